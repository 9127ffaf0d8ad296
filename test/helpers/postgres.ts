/**
 * A PostgreSQL database of the test's own: `warden_t_<random>` on the server
 * named by WARDEN_TEST_DATABASE_URL, dropped by `drop()` (also when the test's
 * nodes were SIGKILLed with connections still open).
 */
import { createScratchDatabase } from "../../src/cli/local-services.js";

/** The server the tests use; its role must be allowed to create databases. */
export const TEST_DATABASE_URL =
  process.env.WARDEN_TEST_DATABASE_URL ?? "postgres://postgres:postgres@127.0.0.1:5432/postgres";

export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const db = await createScratchDatabase(TEST_DATABASE_URL);
  return { url: db.url, drop: () => db.drop() };
}
