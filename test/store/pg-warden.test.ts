/**
 * An embedded Warden whose store is PostgreSQL: the same lifecycle recorder
 * and audit trail write there. A run's record, output and events land in the
 * database, in order, and the single node's SQLite path is not involved.
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
  const config = loadConfig({ env: { WARDEN_DATA_DIR: dataDir } });
  // The cluster config (cluster.databaseUrl) is read without depending on its schema.
  Object.assign(config, { cluster: { databaseUrl: db.url } });
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
    const result = await warden.execute(
      { code: "import sys\nprint('out\\0put')\nsys.stderr.write('err')", language: "python" },
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
