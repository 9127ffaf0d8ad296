/**
 * `warden migrate`: applies pending schema migrations to the configured store
 * and prints its version. `warden serve` does the same at start; this lets an
 * operator migrate a cluster's database once, before the nodes are upgraded.
 */
import { resolve } from "node:path";
import { databaseUrlOf } from "../store/open.js";
import { createContext, type GlobalOptions } from "./context.js";

export interface MigrateOptions extends GlobalOptions {
  databaseUrl?: string;
}

export async function migrateCommand(options: MigrateOptions): Promise<number> {
  const { config } = createContext(options);
  const databaseUrl =
    options.databaseUrl || process.env["WARDEN_DATABASE_URL"] || databaseUrlOf(config);
  if (databaseUrl) {
    const { createPool } = await import("../store/pg/pool.js");
    const { migrate } = await import("../store/pg/migrations.js");
    const pool = createPool({ url: databaseUrl, applicationName: "warden migrate" });
    try {
      const { applied, version } = await migrate(pool);
      process.stdout.write(
        `postgresql schema version ${version}${applied.length ? ` (applied ${applied.join(", ")})` : " (up to date)"}\n`,
      );
    } finally {
      await pool.end();
    }
    return 0;
  }
  const dataDir = resolve(config.dataDir);
  const { openDatabase } = await import("../store/database.js");
  const db = openDatabase(dataDir);
  const version = db.pragma("user_version", { simple: true }) as number;
  db.close();
  process.stdout.write(`sqlite schema version ${version} (${dataDir}/warden.db)\n`);
  return 0;
}
