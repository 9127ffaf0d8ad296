/** The single node's store: one SQLite file in the data dir (src/store/database.ts). */
import { SqliteJudge0Store } from "./judge0.js";
import { SqliteArtifactStore } from "./artifacts.js";
import { openDatabase, storeIsWritable, type Db } from "../database.js";
import type { Store } from "../store.js";
import { SqliteKeyStore } from "./keys.js";
import { SqliteRecordStore } from "./records.js";
import { SqliteSessionRegistry } from "./sessions.js";
import { SqliteQuotaStore, SqliteUsageStore } from "./usage.js";
import { SqliteWebhookStore } from "./webhooks.js";
import { SqliteDashboardSessions } from "./dashboard-sessions.js";

export class SqliteStore implements Store {
  readonly kind = "sqlite" as const;
  readonly records: SqliteRecordStore;
  readonly keys: SqliteKeyStore;
  readonly artifacts: SqliteArtifactStore;
  readonly sessions: SqliteSessionRegistry;
  readonly usage: SqliteUsageStore;
  readonly quotas: SqliteQuotaStore;
  readonly webhooks: SqliteWebhookStore;
  readonly dashboardSessions: SqliteDashboardSessions;
  readonly judge0: SqliteJudge0Store;

  /** Opens (and migrates) `<dataDir>/warden.db`; artifacts' bytes go to `<dataDir>/artifacts`. */
  constructor(
    dataDir: string,
    readonly db: Db = openDatabase(dataDir),
  ) {
    this.usage = new SqliteUsageStore(db);
    this.quotas = new SqliteQuotaStore(db);
    this.records = new SqliteRecordStore(db, this.usage);
    this.keys = new SqliteKeyStore(db);
    this.artifacts = new SqliteArtifactStore(db, dataDir);
    this.sessions = new SqliteSessionRegistry(db);
    this.webhooks = new SqliteWebhookStore(db);
    this.dashboardSessions = new SqliteDashboardSessions(db);
    this.judge0 = new SqliteJudge0Store(db);
  }

  async isWritable(): Promise<boolean> {
    return storeIsWritable(this.db);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
