/**
 * What the routing tests need of PostgreSQL: a fresh database with the
 * store's schema, and worker rows written by hand (no worker loop runs here).
 */
import type pg from "pg";
import { openStore } from "../../src/store/open.js";
import type { PgStore } from "../../src/store/pg/store.js";
import { freshDatabase as scratchDatabase } from "../helpers/postgres.js";

export interface TestDatabase {
  /** The store's own pool: the worker rows the tests write go where the store reads. */
  pool: pg.Pool;
  store: PgStore;
  drop(): Promise<void>;
}

/** A fresh database with the store's schema (its migrations), and the PostgreSQL store on it. */
export async function freshDatabase(): Promise<TestDatabase> {
  const db = await scratchDatabase();
  const store = (await openStore({ dataDir: "/nonexistent", databaseUrl: db.url })) as PgStore;
  return {
    pool: store.pool,
    store,
    async drop() {
      await store.close();
      await db.drop();
    },
  };
}

export async function putWorker(
  pool: pg.Pool,
  w: { id: string; url: string; state?: string; heartbeatAt?: number; running?: number },
): Promise<void> {
  const now = Date.now();
  await pool.query(
    `INSERT INTO workers (id, name, version, url, state, started_at, heartbeat_at,
       max_concurrent, memory_budget_mb, running)
     VALUES ($1, $1, '0.1.0', $2, $3, $4, $5, 10, 4096, $6)
     ON CONFLICT (id) DO UPDATE SET url = $2, state = $3, heartbeat_at = $5, running = $6`,
    [w.id, w.url, w.state ?? "active", now, w.heartbeatAt ?? now, w.running ?? 0],
  );
}
