/**
 * A fresh PostgreSQL database with the DESIGN-14 schema, for the queue and
 * worker tests (local to these tests: the shared helpers come with the store's
 * migrations at merge), and a Redis key prefix of its own.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { RecordStore, SessionRegistry, SessionRow, Store } from "../../src/store/store.js";
import type { ExecutionRecord } from "../../src/store/records.js";
import type { ExecutionResult } from "../../src/contract/result.js";
import { SandboxLimitsSchema } from "../../src/contract/limits.js";
import { insertEvent } from "../../src/cluster/sql.js";

export const DATABASE_URL =
  process.env["WARDEN_TEST_DATABASE_URL"] ?? "postgres://postgres:postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env["WARDEN_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";

const SCHEMA = `
CREATE TABLE executions (
  id text PRIMARY KEY, user_id text NOT NULL, key_id text, source text NOT NULL,
  language text NOT NULL, status text NOT NULL, code_sha256 text NOT NULL,
  code_bytes integer NOT NULL, limits text NOT NULL, result text,
  created_at bigint NOT NULL, started_at bigint, finished_at bigint,
  request text, reservation_mb integer NOT NULL DEFAULT 0, worker_id text,
  attempt integer NOT NULL DEFAULT 0, kill_reason text);
CREATE INDEX executions_queued ON executions (created_at) WHERE status = 'queued';
CREATE INDEX executions_running ON executions (worker_id) WHERE status = 'running';
CREATE TABLE execution_output (execution_id text NOT NULL, stream text NOT NULL,
  data bytea NOT NULL, PRIMARY KEY (execution_id, stream));
CREATE TABLE events (id bigserial PRIMARY KEY, timestamp bigint NOT NULL, execution_id text,
  user_id text, level text NOT NULL, event text NOT NULL, message text NOT NULL, data text);
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

/** A row as the tests read it back. */
export type Row = Record<string, unknown>;
/** A stored result column. */
export const resultOf = (text: unknown): ExecutionResult =>
  JSON.parse(String(text)) as ExecutionResult;

export interface TestDb {
  url: string;
  pool: pg.Pool;
  prefix: string;
  drop(): Promise<void>;
}

export async function freshDb(): Promise<TestDb> {
  const name = `warden_t_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 12 });
  await pool.query(SCHEMA);
  return {
    url: url.toString(),
    pool,
    prefix: `wt:${name}:`,
    async drop() {
      await pool.end();
      const c = new pg.Client({ connectionString: DATABASE_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
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

/** Enough of a Store for an API node's ClusterService over the test pool (records read back, events). */
export function testApiStore(pool: pg.Pool): Store {
  const withOutput = async (id: string, result: ExecutionResult): Promise<ExecutionResult> => {
    const { rows } = await pool.query<{ stream: string; data: Buffer }>(
      "SELECT stream, data FROM execution_output WHERE execution_id = $1",
      [id],
    );
    for (const { stream, data } of rows)
      if (stream === "stdout") result.stdout = data.toString("utf8");
      else if (stream === "stderr") result.stderr = data.toString("utf8");
    return result;
  };
  const records: Partial<RecordStore> = {
    event: (e) => insertEvent(pool, e),
    withOutput,
    async get(id, output = true) {
      const { rows } = await pool.query<Record<string, string | null>>(
        "SELECT * FROM executions WHERE id = $1",
        [id],
      );
      const r = rows[0];
      if (!r) return null;
      let result = r["result"] ? (JSON.parse(r["result"]) as ExecutionResult) : null;
      if (result && output) result = await withOutput(id, result);
      return {
        id,
        userId: r["user_id"]!,
        keyId: r["key_id"] ?? null,
        source: r["source"]!,
        language: r["language"]!,
        status: r["status"],
        codeSha256: r["code_sha256"]!,
        codeBytes: Number(r["code_bytes"]),
        limits: SandboxLimitsSchema.parse(JSON.parse(r["limits"]!)),
        result,
        createdAt: new Date(Number(r["created_at"])).toISOString(),
        startedAt: null,
        finishedAt: null,
      } as ExecutionRecord;
    },
  };
  return { ...testStore(pool), kind: "postgres", records } as unknown as Store;
}
