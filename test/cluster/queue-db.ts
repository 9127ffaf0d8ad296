/**
 * A fresh PostgreSQL database with the store's schema, for the queue and
 * worker tests, and a Redis key prefix of its own.
 */
import pg from "pg";
import type { RecordStore, SessionRegistry, SessionRow, Store } from "../../src/store/store.js";
import type { ExecutionResult } from "../../src/contract/result.js";
import { insertEvent } from "../../src/cluster/sql.js";
import { migrate } from "../../src/store/pg/migrations.js";
import { openStore } from "../../src/store/open.js";
import { freshDatabase } from "../helpers/postgres.js";

export const DATABASE_URL =
  process.env["WARDEN_TEST_DATABASE_URL"] ?? "postgres://postgres:postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env["WARDEN_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";

/** Sandbox limits of the jobs the queue and worker tests make. */
export const LIMITS = {
  timeoutMs: 5000,
  killGraceMs: 500,
  memoryMb: 128,
  cpuPercent: 50,
  diskMb: 64,
  pids: 64,
  outputBytes: 65536,
  openFiles: 64,
};

/** A row as the tests read it back. */
export type Row = Record<string, unknown>;
/** A stored result column. */
export const resultOf = (text: unknown): ExecutionResult =>
  JSON.parse(String(text)) as ExecutionResult;

export interface TestDb {
  url: string;
  pool: pg.Pool;
  prefix: string;
  /** The real PostgreSQL store on this database (its own pool; closed by `drop`). */
  store(): Promise<Store>;
  drop(): Promise<void>;
}

export async function freshDb(): Promise<TestDb> {
  const db = await freshDatabase();
  const pool = new pg.Pool({ connectionString: db.url, max: 12 });
  // The forced drop at the end ends connections still open (a worker's last heartbeat): expected.
  pool.on("error", () => undefined);
  // The store's own migrations: the queue is tested against the schema that ships.
  await migrate(pool);
  const stores: Store[] = [];
  return {
    url: db.url,
    pool,
    prefix: `wt:${new URL(db.url).pathname.slice(1)}:`,
    async store() {
      const store = await openStore({ dataDir: "/nonexistent", databaseUrl: db.url });
      stores.push(store);
      return store;
    },
    async drop() {
      for (const store of stores) await store.close();
      await pool.end();
      await db.drop();
    },
  };
}

/** The slice of the Store the cluster code calls, over the test pool (H1's PG store replaces it). */
export function testStore(pool: pg.Pool): {
  records: Pick<RecordStore, "event">;
  sessions: Pick<SessionRegistry, "endAllOf" | "register">;
} {
  return {
    records: { event: (e) => insertEvent(pool, e) },
    sessions: {
      async register(row) {
        await pool.query(
          "INSERT INTO sessions (id, user_id, key_id, worker_id, language, created_at) VALUES ($1,$2,$3,$4,$5,$6)",
          [row.id, row.userId, row.keyId, row.workerId, row.language, row.createdAt],
        );
      },
      async endAllOf(workerId, reason) {
        const { rows } = await pool.query<Record<string, unknown>>(
          `UPDATE sessions SET ended_at = $3, end_reason = $2 WHERE worker_id = $1 AND ended_at IS NULL
           RETURNING *`,
          [workerId, reason, Date.now()],
        );
        return rows.map((r): SessionRow => ({
          id: r["id"] as string,
          userId: r["user_id"] as string,
          keyId: r["key_id"] as string | null,
          workerId: r["worker_id"] as string,
          language: r["language"] as string | null,
          createdAt: Number(r["created_at"]),
          endedAt: Number(r["ended_at"]),
          endReason: r["end_reason"] as string,
        }));
      },
    },
  };
}
