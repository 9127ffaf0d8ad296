/**
 * The embedded store: one SQLite file in the data dir (WAL mode), opened once
 * per process. Schema changes are numbered migrations applied at start-up.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { USAGE_TABLES_SQL } from "./usage.js";

export type Db = Database.Database;

const MIGRATIONS: string[] = [
  `CREATE TABLE api_keys (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     scopes TEXT NOT NULL,
     user_id TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     revoked_at INTEGER,
     last_used_at INTEGER
   );
   CREATE TABLE executions (
     id TEXT PRIMARY KEY,
     user_id TEXT NOT NULL,
     key_id TEXT,
     source TEXT NOT NULL,
     language TEXT NOT NULL,
     status TEXT NOT NULL,
     code_sha256 TEXT NOT NULL,
     code_bytes INTEGER NOT NULL,
     limits TEXT NOT NULL,
     result TEXT,
     created_at INTEGER NOT NULL,
     started_at INTEGER,
     finished_at INTEGER
   );
   CREATE INDEX executions_user ON executions (user_id, created_at);
   CREATE INDEX executions_status ON executions (status);
   CREATE INDEX executions_created ON executions (created_at);
   CREATE TABLE events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     timestamp INTEGER NOT NULL,
     execution_id TEXT,
     user_id TEXT,
     level TEXT NOT NULL,
     event TEXT NOT NULL,
     message TEXT NOT NULL,
     data TEXT
   );
   CREATE INDEX events_execution ON events (execution_id, id);
   CREATE INDEX events_timestamp ON events (timestamp);`,
  // A key may narrow the server's egress allowlist for everything it runs.
  `ALTER TABLE api_keys ADD COLUMN network_allow TEXT;`,
  // Files that left a sandbox (executions and sessions), stored under the data dir.
  `CREATE TABLE artifacts (
     id TEXT PRIMARY KEY,
     owner_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     name TEXT NOT NULL,
     mime_type TEXT NOT NULL,
     size INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     UNIQUE (owner_id, name)
   );
   CREATE INDEX artifacts_created ON artifacts (created_at);`,
  // A key may set its own static-analysis policy mode (off | audit | block); NULL = the server's.
  `ALTER TABLE api_keys ADD COLUMN policy TEXT;`,
  // Program output out of the result JSON, as bytes no longer than the program wrote
  // (store/output-codec.ts): JSON would have made a control byte 6 bytes.
  `CREATE TABLE execution_output (
     execution_id TEXT NOT NULL,
     stream TEXT NOT NULL,
     data BLOB NOT NULL,
     PRIMARY KEY (execution_id, stream)
   );
   CREATE INDEX executions_listing ON executions (created_at, id);`,
  // Where each session lives and how it ended (store/store.ts SessionRegistry).
  `CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     user_id TEXT NOT NULL,
     key_id TEXT,
     worker_id TEXT NOT NULL,
     language TEXT,
     created_at INTEGER NOT NULL,
     ended_at INTEGER,
     end_reason TEXT
   );
   CREATE INDEX sessions_live ON sessions (worker_id) WHERE ended_at IS NULL;
   CREATE INDEX sessions_user ON sessions (user_id) WHERE ended_at IS NULL;`,
  // Usage per hour, user and key, and quota rules (src/store/usage.ts, quotas.ts).
  USAGE_TABLES_SQL,
  // Signed callbacks (store/webhooks.ts): each key's signing secret, made when first needed;
  // deliveries (leased while being sent) and a bounded log of their attempts.
  `ALTER TABLE api_keys ADD COLUMN webhook_secret TEXT;
   CREATE TABLE webhook_deliveries (
     id TEXT PRIMARY KEY,
     execution_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     key_id TEXT,
     url TEXT NOT NULL,
     format TEXT NOT NULL,
     batch_id TEXT,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     first_attempt_at INTEGER,
     last_status INTEGER,
     last_error TEXT,
     delivered_at INTEGER,
     lease_owner TEXT,
     lease_until INTEGER
   );
   CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
   CREATE INDEX webhook_deliveries_user ON webhook_deliveries (user_id, created_at);
   CREATE INDEX webhook_deliveries_execution ON webhook_deliveries (execution_id);
   CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at, id);
   CREATE TABLE webhook_attempts (
     delivery_id TEXT NOT NULL,
     attempt INTEGER NOT NULL,
     at INTEGER NOT NULL,
     status INTEGER,
     error TEXT,
     duration_ms INTEGER NOT NULL,
     PRIMARY KEY (delivery_id, attempt)
   );`,
  // The admin audit search filters by event name and user over time; dashboard logins.
  `CREATE INDEX events_event ON events (event, timestamp);
   CREATE INDEX events_user ON events (user_id, id);
   CREATE TABLE dashboard_sessions (
     id_hash TEXT PRIMARY KEY,
     key_id TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL
   );
   CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);`,
  // Judge0 submissions (store/judge0.ts): go when their execution record expires.
  `CREATE TABLE judge0_submissions (
     token TEXT PRIMARY KEY,
     user_id TEXT NOT NULL,
     language_id INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     fields TEXT NOT NULL
   );
   CREATE TRIGGER judge0_submissions_expire AFTER DELETE ON executions
   BEGIN DELETE FROM judge0_submissions WHERE token = OLD.id; END;`,
  // A key's isolation tier (src/executions/isolation.ts): its default, and whether it is forced.
  `ALTER TABLE api_keys ADD COLUMN isolation_default TEXT;
   ALTER TABLE api_keys ADD COLUMN isolation_forced INTEGER NOT NULL DEFAULT 0;`,
];

/** The schema version this code writes (SQLite's `user_version`). */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

/**
 * After a checkpoint the WAL is cut back to this size: one large transaction
 * (a run's output) would otherwise leave a WAL file that big for good.
 */
const WAL_SIZE_LIMIT_BYTES = 32 * 1024 * 1024;

export function openDatabase(dataDir: string, fileName = "warden.db"): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new Database(join(dataDir, fileName));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  const version = db.pragma("user_version", { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    db.close();
    throw new Error(
      `${join(dataDir, fileName)} is at schema version ${version}, newer than this Warden (${MIGRATIONS.length}): upgrade Warden`,
    );
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return db;
}

/** A writable store answers a trivial write (for /readyz). */
export function storeIsWritable(db: Db): boolean {
  try {
    db.prepare("CREATE TEMP TABLE IF NOT EXISTS readyz (x)").run();
    db.prepare("INSERT INTO readyz VALUES (1)").run();
    db.prepare("DELETE FROM readyz").run();
    return true;
  } catch {
    return false;
  }
}
