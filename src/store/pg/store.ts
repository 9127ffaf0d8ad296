/**
 * The cluster's store: PostgreSQL behind the same interface as SQLite. The
 * cluster code (queue, reaper) shares its pool and its transactions.
 */
import type pg from "pg";
import type { Logger } from "../../audit/logger.js";
import type { Store } from "../store.js";
import { PgJudge0Store } from "./judge0.js";
import { PgArtifactStore } from "./artifacts.js";
import { PgKeyStore } from "./keys.js";
import { migrate } from "./migrations.js";
import { createPool, query, transaction } from "./pool.js";
import { PgRecordStore } from "./records.js";
import { PgSessionRegistry } from "./sessions.js";
import { PgQuotaStore, PgUsageStore } from "./usage.js";
import { PgWebhookStore } from "./webhooks.js";
import { PgDashboardSessions } from "./dashboard-sessions.js";

/** How long closing waits for audit events still queued for a database that may be gone. */
const CLOSE_FLUSH_MS = 5_000;

export class PgStore implements Store {
  readonly kind = "postgres" as const;
  readonly records: PgRecordStore;
  readonly keys: PgKeyStore;
  readonly artifacts: PgArtifactStore;
  readonly sessions: PgSessionRegistry;
  readonly usage: PgUsageStore;
  readonly quotas: PgQuotaStore;
  readonly webhooks: PgWebhookStore;
  readonly dashboardSessions: PgDashboardSessions;
  readonly judge0: PgJudge0Store;

  /**
   * The connection pool (max 10 connections, 30 s statement timeout), for the
   * cluster's own SQL (the queue's claim, heartbeats, the reaper). Its int8
   * and numeric columns come back as numbers. Run several statements that
   * must commit together through `transaction`.
   */
  readonly pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.pool = pool;
    this.records = new PgRecordStore(pool);
    this.keys = new PgKeyStore(pool);
    this.artifacts = new PgArtifactStore(pool);
    this.sessions = new PgSessionRegistry(pool);
    this.usage = new PgUsageStore(pool);
    this.quotas = new PgQuotaStore(pool);
    this.webhooks = new PgWebhookStore(pool);
    this.dashboardSessions = new PgDashboardSessions(pool);
    this.judge0 = new PgJudge0Store(pool);
  }

  /** Connects and applies pending migrations (refused if the database is newer than this code). */
  static async open(o: {
    url: string;
    applicationName?: string | undefined;
    logger?: Logger | undefined;
  }): Promise<PgStore> {
    const pool = createPool(o);
    try {
      await migrate(pool);
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    return new PgStore(pool);
  }

  /**
   * Runs `fn` in one transaction on one pooled connection: committed when it
   * resolves, rolled back when it throws. Use the given client for every
   * statement of the transaction (string parameters: see pool.ts safeParams).
   */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return transaction(this.pool, fn);
  }

  /** Writable: connected to a primary that accepts writes (not a read-only replica). */
  async isWritable(): Promise<boolean> {
    try {
      const { rows } = await query<{ recovery: boolean; ro: string }>(
        this.pool,
        "SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS ro",
      );
      return rows[0]?.recovery === false && rows[0].ro === "off";
    } catch {
      return false;
    }
  }

  /** Waits (a bounded time) for queued audit events, then closes every connection. */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.records.flushed(),
      new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_FLUSH_MS))),
    ]);
    clearTimeout(timer);
    await this.pool.end();
  }
}
