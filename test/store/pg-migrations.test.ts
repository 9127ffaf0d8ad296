/**
 * PostgreSQL schema migrations and the key cache, against a real server:
 * nodes starting together apply each migration once; a database migrated by a
 * newer Warden is refused with a clear error; `warden migrate` applies and
 * reports; a revoke elsewhere reaches this node's cache within its TTL.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/open.js";
import { PgKeyStore } from "../../src/store/pg/keys.js";
import { PG_SCHEMA_VERSION } from "../../src/store/pg/migrations.js";
import type { PgStore } from "../../src/store/pg/store.js";
import type { Store } from "../../src/store/store.js";
import { warden } from "../helpers/cli.js";
import { freshDatabase } from "../helpers/postgres.js";

const drops: (() => Promise<void>)[] = [];
const open: Store[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined);
});
afterAll(async () => {
  for (const drop of drops) await drop();
});

async function database(): Promise<string> {
  const db = await freshDatabase();
  drops.push(() => db.drop());
  return db.url;
}

async function rows(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Record<string, unknown>>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe("PostgreSQL migrations", () => {
  it("lets nodes start at once on an empty database: each migration applied once", async () => {
    const url = await database();
    const stores = await Promise.all(
      Array.from({ length: 3 }, () => openStore({ dataDir: "/nonexistent", databaseUrl: url })),
    );
    open.push(...stores);
    expect(stores.every((s) => s.kind === "postgres")).toBe(true);
    const applied = await rows(url, "SELECT version FROM schema_migrations ORDER BY version");
    expect(applied.map((r) => r["version"])).toEqual(
      Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1),
    );
    // A later start applies nothing.
    open.push(await openStore({ dataDir: "/nonexistent", databaseUrl: url }));
    expect(await rows(url, "SELECT version FROM schema_migrations")).toHaveLength(
      PG_SCHEMA_VERSION,
    );
  });

  it("refuses a database a newer Warden migrated, naming both versions", async () => {
    const url = await database();
    open.push(await openStore({ dataDir: "/nonexistent", databaseUrl: url }));
    const newer = PG_SCHEMA_VERSION + 1;
    await rows(url, `INSERT INTO schema_migrations VALUES (${newer}, 0)`);
    await expect(openStore({ dataDir: "/nonexistent", databaseUrl: url })).rejects.toThrow(
      `the database is at schema version ${newer}, newer than this Warden (${PG_SCHEMA_VERSION})`,
    );
  });

  it("`warden migrate --database-url` applies pending migrations and prints the version", async () => {
    const url = await database();
    const first = await warden(["migrate", "--database-url", url]);
    expect(first).toMatchObject({ code: 0 });
    expect(first.stdout).toContain(`postgresql schema version ${PG_SCHEMA_VERSION} (applied 1`);
    const again = await warden(["migrate"], { env: { WARDEN_DATABASE_URL: url } });
    expect(again.stdout).toContain("(up to date)");
    await rows(url, `INSERT INTO schema_migrations VALUES (${PG_SCHEMA_VERSION + 1}, 0)`);
    const refused = await warden(["migrate", "--database-url", url]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("newer than this Warden");
    expect(refused.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});

describe("SQLite schema version", () => {
  it("refuses a data dir a newer Warden migrated", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-newer-"));
    try {
      await (await openStore({ dataDir: dir })).close();
      const db = new Database(join(dir, "warden.db"));
      db.pragma("user_version = 999");
      db.close();
      await expect(openStore({ dataDir: dir })).rejects.toThrow(/schema version 999, newer than/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("PostgreSQL key cache", () => {
  it("drops a key revoked on this node at once; elsewhere within the cache's TTL", async () => {
    const url = await database();
    const a = (await openStore({ dataDir: "/nonexistent", databaseUrl: url })) as PgStore;
    const b = (await openStore({ dataDir: "/nonexistent", databaseUrl: url })) as PgStore;
    open.push(a, b);
    const shortLived = new PgKeyStore(b.pool, 200);
    const { key, token } = await a.keys.create({ name: "k", scopes: ["execute"], userId: "u" });
    expect(await b.keys.authenticate(token)).toMatchObject({ id: key.id });
    expect(await shortLived.authenticate(token)).toMatchObject({ id: key.id });
    await a.keys.revoke(key.id);
    expect(await a.keys.authenticate(token)).toBeNull();
    // Node b read the key just before: it trusts that read for up to its TTL (docs/store.md).
    expect(await b.keys.authenticate(token)).toMatchObject({ id: key.id });
    await new Promise((r) => setTimeout(r, 300));
    expect(await shortLived.authenticate(token)).toBeNull();
  });

  it("holds a bounded number of keys: the oldest read is forgotten first", async () => {
    const url = await database();
    const a = (await openStore({ dataDir: "/nonexistent", databaseUrl: url })) as PgStore;
    open.push(a);
    const small = new PgKeyStore(a.pool, 60_000, 2);
    const made = [];
    for (let i = 0; i < 3; i++)
      made.push(await a.keys.create({ name: `k${i}`, scopes: ["execute"], userId: "u" }));
    for (const { token } of made) expect(await small.authenticate(token)).not.toBeNull();
    for (const { key } of made) await a.keys.revoke(key.id);
    // k0 was pushed out by k2: read again, it is revoked. k1 and k2 are still trusted (TTL 60 s).
    expect(await small.authenticate(made[0]!.token)).toBeNull();
    expect(await small.authenticate(made[2]!.token)).not.toBeNull();
  });

  it("never caches an unknown token: a key made on another node works at once", async () => {
    const url = await database();
    const a = await openStore({ dataDir: "/nonexistent", databaseUrl: url });
    const b = await openStore({ dataDir: "/nonexistent", databaseUrl: url });
    open.push(a, b);
    const token = "wdn_made_elsewhere_0123456789abcdef";
    expect(await b.keys.authenticate(token)).toBeNull();
    await a.keys.create({ name: "k", scopes: ["execute"], userId: "u", token });
    expect(await b.keys.authenticate(token)).toMatchObject({ userId: "u" });
  });
});
