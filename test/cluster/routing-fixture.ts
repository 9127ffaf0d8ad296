/**
 * What the routing tests need of PostgreSQL, written here because the shared
 * helpers (test/helpers/postgres.ts) and the store's registry live on other
 * branches: a fresh database with the cluster tables of DESIGN-14, a thin
 * SessionRegistry on it, and worker rows written by hand.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { SessionRegistry, SessionRow } from "../../src/store/store.js";

const ADMIN_URL =
  process.env.WARDEN_TEST_DATABASE_URL ?? "postgres://postgres:postgres@127.0.0.1:5432/postgres";

const SCHEMA = `
CREATE TABLE executions (
  id text PRIMARY KEY, user_id text NOT NULL, key_id text, source text NOT NULL,
  language text NOT NULL, status text NOT NULL, code_sha256 text NOT NULL,
  code_bytes integer NOT NULL, limits text NOT NULL, result text,
  created_at bigint NOT NULL, started_at bigint, finished_at bigint,
  request text, reservation_mb integer NOT NULL DEFAULT 0, worker_id text,
  attempt integer NOT NULL DEFAULT 0, kill_reason text);
CREATE TABLE workers (
  id text PRIMARY KEY, name text NOT NULL, version text NOT NULL, url text NOT NULL,
  state text NOT NULL, started_at bigint NOT NULL, heartbeat_at bigint NOT NULL,
  max_concurrent integer NOT NULL, memory_budget_mb integer NOT NULL,
  running integer NOT NULL DEFAULT 0, sessions integer NOT NULL DEFAULT 0,
  memory_reserved_mb integer NOT NULL DEFAULT 0,
  languages text NOT NULL DEFAULT '[]', environments text NOT NULL DEFAULT '[]');
CREATE TABLE sessions (
  id text PRIMARY KEY, user_id text NOT NULL, key_id text, worker_id text NOT NULL,
  language text, created_at bigint NOT NULL, ended_at bigint, end_reason text);
`;

export interface TestDatabase {
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function freshDatabase(): Promise<TestDatabase> {
  const name = `warden_t_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.href, max: 4 });
  await pool.query(SCHEMA);
  return {
    pool,
    async drop() {
      await pool.end();
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
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

interface Row {
  id: string;
  user_id: string;
  key_id: string | null;
  worker_id: string;
  language: string | null;
  created_at: string;
  ended_at: string | null;
  end_reason: string | null;
}

const toRow = (r: Row): SessionRow => ({
  id: r.id,
  userId: r.user_id,
  keyId: r.key_id,
  workerId: r.worker_id,
  language: r.language,
  createdAt: Number(r.created_at),
  endedAt: r.ended_at === null ? null : Number(r.ended_at),
  endReason: r.end_reason,
});

/** The registry on PostgreSQL, as thin as it gets (H1's store has the real one). */
export class PgSessionRegistry implements SessionRegistry {
  constructor(private readonly pool: pg.Pool) {}
  async register(r: Omit<SessionRow, "endedAt" | "endReason">): Promise<void> {
    await this.pool.query(
      `INSERT INTO sessions (id, user_id, key_id, worker_id, language, created_at)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [r.id, r.userId, r.keyId, r.workerId, r.language, r.createdAt],
    );
  }
  async ended(id: string, reason: string, at = Date.now()): Promise<void> {
    await this.pool.query(
      `UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL`,
      [id, at, reason],
    );
  }
  async get(id: string): Promise<SessionRow | null> {
    const { rows } = await this.pool.query<Row>(`SELECT * FROM sessions WHERE id = $1`, [id]);
    return rows[0] ? toRow(rows[0]) : null;
  }
  async liveCountOf(userId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM sessions WHERE user_id = $1 AND ended_at IS NULL`,
      [userId],
    );
    return Number(rows[0]?.n ?? 0);
  }
  async endAllOf(workerId: string, reason: string): Promise<SessionRow[]> {
    const { rows } = await this.pool.query<Row>(
      `UPDATE sessions SET ended_at = $2, end_reason = $3
       WHERE worker_id = $1 AND ended_at IS NULL RETURNING *`,
      [workerId, Date.now(), reason],
    );
    return rows.map(toRow);
  }
}
