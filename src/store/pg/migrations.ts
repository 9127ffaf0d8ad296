/**
 * The PostgreSQL schema as numbered migrations. Each runs once, in its own
 * transaction, recorded in `schema_migrations`; all of it under one advisory
 * lock, so nodes starting together wait for each other instead of racing.
 * A database migrated by a newer Warden is refused: this code would misread it.
 * Append new migrations; never edit one that has shipped.
 */
import type pg from "pg";
import { USAGE_TABLES_SQL } from "../usage.js";

const MIGRATIONS: string[] = [
  // 1: what SQLite holds on a single node, plus the cluster's queue columns and workers.
  `CREATE TABLE api_keys (
     id text PRIMARY KEY, name text NOT NULL, hash text NOT NULL UNIQUE, scopes text NOT NULL,
     user_id text NOT NULL, created_at bigint NOT NULL, revoked_at bigint, last_used_at bigint,
     network_allow text, policy text);
   -- COLLATE "C": listing pages by (created_at, id) compare ids byte-wise, as SQLite does.
   CREATE TABLE executions (
     id text COLLATE "C" PRIMARY KEY, user_id text NOT NULL, key_id text, source text NOT NULL,
     language text NOT NULL, status text NOT NULL, code_sha256 text NOT NULL,
     code_bytes integer NOT NULL, limits text NOT NULL, result text,
     created_at bigint NOT NULL, started_at bigint, finished_at bigint,
     request text, reservation_mb integer NOT NULL DEFAULT 0, worker_id text,
     attempt integer NOT NULL DEFAULT 0, kill_reason text);
   CREATE INDEX executions_user ON executions (user_id, created_at);
   CREATE INDEX executions_status ON executions (status);
   CREATE INDEX executions_listing ON executions (created_at, id);
   CREATE INDEX executions_queued ON executions (created_at) WHERE status = 'queued';
   CREATE INDEX executions_running ON executions (worker_id) WHERE status = 'running';
   CREATE TABLE execution_output (execution_id text NOT NULL, stream text NOT NULL,
     data bytea NOT NULL, PRIMARY KEY (execution_id, stream));
   CREATE TABLE events (id bigserial PRIMARY KEY, timestamp bigint NOT NULL, execution_id text,
     user_id text, level text NOT NULL, event text NOT NULL, message text NOT NULL, data text);
   CREATE INDEX events_execution ON events (execution_id, id);
   CREATE INDEX events_timestamp ON events (timestamp);
   CREATE TABLE artifacts (id text PRIMARY KEY, owner_id text NOT NULL, user_id text NOT NULL,
     name text NOT NULL, mime_type text NOT NULL, size integer NOT NULL, created_at bigint NOT NULL,
     content bytea, UNIQUE (owner_id, name));
   CREATE INDEX artifacts_created ON artifacts (created_at);
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
   CREATE INDEX sessions_live ON sessions (worker_id) WHERE ended_at IS NULL;
   CREATE INDEX sessions_user ON sessions (user_id) WHERE ended_at IS NULL;`,
  // What each worker detected it can run, with versions: an API node has no runtimes of its own.
  `ALTER TABLE workers ADD COLUMN runtimes text NOT NULL DEFAULT '[]';`,
  // Usage per hour, user and key, and quota rules (src/store/usage.ts, quotas.ts).
  USAGE_TABLES_SQL,
  // Signed callbacks (store/webhooks.ts): each key's signing secret; deliveries, leased by
  // the API node sending them, and a bounded log of their attempts.
  `ALTER TABLE api_keys ADD COLUMN webhook_secret text;
   CREATE TABLE webhook_deliveries (
     id text COLLATE "C" PRIMARY KEY, execution_id text COLLATE "C" NOT NULL,
     user_id text NOT NULL, key_id text, url text NOT NULL, format text NOT NULL, batch_id text,
     state text NOT NULL, attempts integer NOT NULL DEFAULT 0, next_attempt_at bigint NOT NULL,
     created_at bigint NOT NULL, first_attempt_at bigint, last_status integer, last_error text,
     delivered_at bigint, lease_owner text, lease_until bigint);
   CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
   CREATE INDEX webhook_deliveries_user ON webhook_deliveries (user_id, created_at);
   CREATE INDEX webhook_deliveries_execution ON webhook_deliveries (execution_id);
   CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at, id);
   CREATE TABLE webhook_attempts (delivery_id text NOT NULL, attempt integer NOT NULL,
     at bigint NOT NULL, status integer, error text, duration_ms integer NOT NULL,
     PRIMARY KEY (delivery_id, attempt));`,
  // The admin audit search filters by event name and user over time; dashboard logins.
  `CREATE INDEX events_event ON events (event, timestamp);
   CREATE INDEX events_user ON events (user_id, id);
   CREATE TABLE dashboard_sessions (id_hash text PRIMARY KEY, key_id text NOT NULL,
     created_at bigint NOT NULL, expires_at bigint NOT NULL);
   CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);`,
  // Judge0 submissions (store/judge0.ts): go when their execution record expires.
  `CREATE TABLE judge0_submissions (token text PRIMARY KEY, user_id text NOT NULL,
     language_id integer NOT NULL, created_at bigint NOT NULL, fields text NOT NULL);
   CREATE FUNCTION judge0_submissions_expire() RETURNS trigger LANGUAGE plpgsql AS
     $$ BEGIN DELETE FROM judge0_submissions WHERE token = OLD.id; RETURN OLD; END $$;
   CREATE TRIGGER judge0_submissions_expire AFTER DELETE ON executions
     FOR EACH ROW EXECUTE FUNCTION judge0_submissions_expire();`,
  // A key's isolation tier (src/executions/isolation.ts): its default, and whether it is forced.
  `ALTER TABLE api_keys ADD COLUMN isolation_default text,
     ADD COLUMN isolation_forced integer NOT NULL DEFAULT 0;`,
];

/** The schema version this code writes. */
export const PG_SCHEMA_VERSION = MIGRATIONS.length;

/** pg_advisory_lock key of migrations ("WARDMIGR" would not fit; any constant no one else uses). */
export const MIGRATION_LOCK = 0x5741_5244_0001;

export class SchemaTooNewError extends Error {
  constructor(readonly found: number) {
    super(
      `the database is at schema version ${found}, newer than this Warden (${PG_SCHEMA_VERSION}): upgrade Warden on this node`,
    );
    this.name = "SchemaTooNewError";
  }
}

/**
 * Applies every pending migration; returns the versions it applied and the
 * version the database is at. Safe to call from many nodes at once.
 */
export async function migrate(
  pool: pg.Pool,
  maxVersion = PG_SCHEMA_VERSION,
): Promise<{ applied: number[]; version: number }> {
  const client = await pool.connect();
  try {
    // Waiting for another node's migration, or a long one, is not a stuck statement.
    await client.query("SET statement_timeout = 0");
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
    try {
      await client.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)",
      );
      const { rows } = await client.query<{ v: number | null }>(
        "SELECT MAX(version) AS v FROM schema_migrations",
      );
      const current = rows[0]?.v ?? 0;
      if (current > maxVersion) throw new SchemaTooNewError(current);
      const applied: number[] = [];
      for (let v = current + 1; v <= maxVersion; v++) {
        await client.query("BEGIN");
        try {
          await client.query(MIGRATIONS[v - 1]!);
          await client.query(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            [v, Date.now()],
          );
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw error;
        }
        applied.push(v);
      }
      return { applied, version: Math.max(current, maxVersion) };
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => undefined);
    }
  } finally {
    // Never back to the pool: its session setting is changed (and closing it frees the lock for sure).
    client.release(true);
  }
}
