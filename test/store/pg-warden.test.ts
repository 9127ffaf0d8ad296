/**
 * An embedded Warden whose store is PostgreSQL (a cluster node of role
 * `all`: PostgreSQL needs Redis beside it, a node alone on PostgreSQL would
 * settle other nodes' runs as its own orphans). A run's record, output and
 * events land in the database, in order, and no SQLite file is made.
 */
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { openWarden, type EmbeddedWarden } from "../../src/index.js";
import { freshDatabase } from "../helpers/postgres.js";

let warden: EmbeddedWarden;
let drop: () => Promise<void>;
let dataDir: string;

beforeAll(async () => {
  const db = await freshDatabase();
  drop = () => db.drop();
  dataDir = mkdtempSync(join(tmpdir(), "warden-pg-"));
  const config = loadConfig({
    env: { WARDEN_DATA_DIR: dataDir, WARDEN_POOL: "false" },
    overrides: {
      cluster: {
        databaseUrl: db.url,
        redisUrl: process.env["WARDEN_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379",
        redisKeyPrefix: `wt:${new URL(db.url).pathname.slice(1)}:`,
        secret: "pg-warden-test-secret-of-32-chars!",
      },
    },
  });
  warden = await openWarden({ config });
});
afterAll(async () => {
  await warden?.shutdown(1000);
  await drop?.();
});

describe("embedded Warden on PostgreSQL", () => {
  it("keeps a run's record, output and audit events in the database", async () => {
    expect(warden.store.kind).toBe("postgres");
    expect(existsSync(join(dataDir, "warden.db"))).toBe(false);
    const result = await warden.cluster!.service.execute(
      {
        code: "import sys\nprint('out\\0put')\nsys.stderr.write('err')",
        language: "python",
        retryOnFailure: true,
      },
      "pg-user",
    );
    expect(result).toMatchObject({ status: "completed", stdout: "out\u0000put\n" });
    await vi.waitFor(async () =>
      expect((await warden.getRecord(result.id))?.status).toBe("completed"),
    );
    const record = (await warden.getRecord(result.id))!;
    expect(record.result).toMatchObject({ stdout: "out\u0000put\n", stderr: "err" });
    expect((await warden.getLogs(result.id)).map((e) => e.event)).toEqual([
      "queued",
      "started",
      "completed",
    ]);
    expect(await warden.store.isWritable()).toBe(true);
  });
});
