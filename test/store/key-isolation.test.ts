/**
 * A key's isolation tier in both stores: the migration that adds the columns
 * keeps keys made before it (the server's tier, not forced), new keys and
 * patches round-trip, and a forced key without a gvisor default is refused.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/open.js";
import { migrate, PG_SCHEMA_VERSION } from "../../src/store/pg/migrations.js";
import { SQLITE_SCHEMA_VERSION } from "../../src/store/database.js";
import type { Store } from "../../src/store/store.js";
import { freshDatabase } from "../helpers/postgres.js";
import { BACKENDS } from "./backends.js";

const cleanups: (() => Promise<void> | void)[] = [];
const open: Store[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined);
});
afterAll(async () => {
  for (const c of cleanups) await c();
});

const OLD_KEY = `INSERT INTO api_keys (id, name, hash, scopes, user_id, created_at)
  VALUES ('key_old', 'old', 'h0', 'execute', 'alice', 1)`;

describe.each(BACKENDS)("key isolation: $name", (backend) => {
  it("stores a key's default and forced tier, and patches them", async () => {
    const opened = await backend.open();
    cleanups.push(() => opened.dispose());
    const { keys } = opened.store;
    const { key } = await keys.create({
      name: "tenant",
      scopes: ["execute"],
      userId: "tenant",
      isolationDefault: "gvisor",
      isolationForced: true,
    });
    expect(key).toMatchObject({ isolationDefault: "gvisor", isolationForced: true });
    const plain = (await keys.create({ name: "p", scopes: ["execute"], userId: "p" })).key;
    expect(plain).toMatchObject({ isolationDefault: null, isolationForced: false });
    // Clearing the default while still forced would leave a forced key with no tier.
    await expect(keys.update(key.id, { isolationDefault: null })).rejects.toMatchObject({
      code: "INVALID_REQUEST",
    });
    expect(await keys.update(key.id, { isolationForced: false })).toMatchObject({
      isolationDefault: "gvisor",
      isolationForced: false,
    });
    expect(await keys.update(key.id, { isolationDefault: null })).toMatchObject({
      isolationDefault: null,
      isolationForced: false,
    });
    await expect(
      keys.create({
        name: "x",
        scopes: ["execute"],
        userId: "x",
        isolationDefault: "namespaces",
        isolationForced: true,
      }),
    ).rejects.toMatchObject({ code: "INVALID_REQUEST" });
  });
});

describe("the key isolation migration", () => {
  it("SQLite: a key made before it reads as the server's tier, not forced", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-iso-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    await (await openStore({ dataDir: dir })).close();
    // Back to the schema before this migration, with a key of that time.
    const db = new Database(join(dir, "warden.db"));
    db.exec("ALTER TABLE api_keys DROP COLUMN isolation_default");
    db.exec("ALTER TABLE api_keys DROP COLUMN isolation_forced");
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION - 1}`);
    db.exec(OLD_KEY);
    db.close();
    const store = await openStore({ dataDir: dir });
    open.push(store);
    expect(await store.keys.get("key_old")).toMatchObject({
      isolationDefault: null,
      isolationForced: false,
    });
  });

  it("PostgreSQL: a key made before it reads as the server's tier, not forced", async () => {
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      await migrate(pool, PG_SCHEMA_VERSION - 1);
      await pool.query(OLD_KEY);
    } finally {
      await pool.end();
    }
    const store = await openStore({ dataDir: "/nonexistent", databaseUrl: db.url });
    open.push(store);
    expect(await store.keys.get("key_old")).toMatchObject({
      isolationDefault: null,
      isolationForced: false,
    });
  });
});
