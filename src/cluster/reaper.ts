/**
 * The reaper runs on every node and is idempotent: under a try-lock, one
 * node at a time declares workers whose heartbeat is older than
 * workerTimeoutMs `gone` (by the database's clock, so nodes' clock skew does
 * not matter), re-queues their running executions while the retry policy
 * allows (else ends them `error`/WORKER_LOST — never left `running`), ends
 * their live sessions (`worker_lost`) and expires queued work past the queue
 * timeout. A pass that dies half-way leaves nothing the next pass misses:
 * it works from states (`gone` workers with running rows or live sessions),
 * not from the moment a worker was found dead.
 */
import type pg from "pg";
import type { Logger } from "../audit/logger.js";
import { blankResult } from "../contract/result.js";
import type { RecordStore, SessionRegistry } from "../store/store.js";
import { channels } from "./events.js";
import { QueuedJobSchema } from "./job.js";
import { writeFinal, type ClusterQueue } from "./queue.js";
import type { ClusterRedis } from "./redis.js";
import { insertEvent, LOCKS, transaction } from "./sql.js";

export interface ReaperOptions {
  pool: pg.Pool;
  queue: ClusterQueue;
  /** Audit events and the session registry (the store's). */
  store: { records: Pick<RecordStore, "event">; sessions: Pick<SessionRegistry, "endAllOf"> };
  /** Tells waiting clients and idle workers; absent in tests of the SQL alone. */
  redis?: ClusterRedis | undefined;
  logger: Logger;
  workerTimeoutMs: number;
  queueTimeoutMs: number;
  maxRetries: number;
  /** @default workerTimeoutMs / 5, at least 200 */
  everyMs?: number;
}

export interface ReapReport {
  dead: string[];
  requeued: string[];
  lost: string[];
  sessionsEnded: string[];
  expired: string[];
}

/** How long a gone worker's row stays for operators to see (admin view) before it is deleted. */
export const GONE_RETENTION_MS = 24 * 3_600_000;

/** The database's clock in epoch ms: every node's heartbeats and cut-offs use this one. */
export const DB_NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

export class Reaper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | null = null;

  constructor(private readonly o: ReaperOptions) {}

  start(): void {
    if (this.timer) return;
    const every = this.o.everyMs ?? Math.max(200, Math.floor(this.o.workerTimeoutMs / 5));
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.pass()
        .catch((error: unknown) => this.o.logger.warn({ err: error }, "reaper pass failed"))
        .finally(() => (this.running = null));
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass; safe on any node at any time. */
  async pass(): Promise<ReapReport> {
    const report: ReapReport = { dead: [], requeued: [], lost: [], sessionsEnded: [], expired: [] };
    const done = await transaction(this.o.pool, async (c) => {
      const { rows: lock } = await c.query<{ ok: boolean }>(
        "SELECT pg_try_advisory_xact_lock($1) AS ok",
        [LOCKS.reaper],
      );
      if (!lock[0]?.ok) return false; // another node is reaping right now
      const dead = await c.query<{ id: string }>(
        `UPDATE workers SET state = 'gone'
         WHERE state <> 'gone' AND heartbeat_at < ${DB_NOW_MS} - $1 RETURNING id`,
        [this.o.workerTimeoutMs],
      );
      report.dead = dead.rows.map((r) => r.id);
      await this.settleOrphans(c, report);
      return true;
    });
    if (!done) return report;
    await this.endLostSessions(report);
    await this.prune();
    report.expired = await this.o.queue.expireQueued(this.o.queueTimeoutMs);
    if (report.dead.length > 0)
      this.o.logger.warn({ workers: report.dead }, "workers stopped heartbeating: declared gone");
    if (report.requeued.length > 0) await this.o.redis?.publish(channels.wake(), { t: "wake" });
    for (const id of [...report.lost, ...report.expired])
      await this.o.redis?.publish(channels.exec(id), { t: "end", status: "error" });
    return report;
  }

  /**
   * Rows of workers gone for a day, with nothing left on them, are deleted:
   * every start under a fresh id adds a row, and placement reads them all
   * on every create, so they must not pile up for ever.
   */
  private async prune(): Promise<void> {
    await this.o.pool.query(
      `DELETE FROM workers w WHERE state = 'gone' AND heartbeat_at < ${DB_NOW_MS} - $1
         AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.worker_id = w.id AND e.status = 'running')
         AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.worker_id = w.id AND s.ended_at IS NULL)`,
      [GONE_RETENTION_MS],
    );
  }

  /** Running executions of gone workers: re-queued per the retry policy, else ended. */
  private async settleOrphans(c: pg.PoolClient, report: ReapReport): Promise<void> {
    const orphans = await c.query<{
      id: string;
      user_id: string;
      worker_id: string;
      attempt: number;
      request: string | null;
      kill_reason: string | null;
      created_at: string;
    }>(
      // A worker whose row was deleted (by hand, or a cleanup of old rows) is as gone as one
      // marked so: its running rows would otherwise never be settled.
      `SELECT e.id, e.user_id, e.worker_id, e.attempt, e.request, e.kill_reason, e.created_at
       FROM executions e LEFT JOIN workers w ON w.id = e.worker_id
       WHERE e.status = 'running' AND (w.id IS NULL OR w.state = 'gone') FOR UPDATE OF e`,
    );
    const now = Date.now();
    for (const row of orphans.rows) {
      // A row that is not JSON is not retried; throwing here would fail every pass, cluster-wide.
      const job = row.request ? QueuedJobSchema.safeParse(parseJson(row.request)) : null;
      const retry =
        row.kill_reason === null && job?.success === true && job.data.retryOnFailure
          ? row.attempt <= this.o.maxRetries
          : false;
      if (retry) {
        await c.query(
          "UPDATE executions SET status = 'queued', worker_id = NULL, started_at = NULL WHERE id = $1",
          [row.id],
        );
        await insertEvent(c, {
          executionId: row.id,
          userId: row.user_id,
          level: "warn",
          event: "requeued",
          message: `worker ${row.worker_id} was lost; queued again (attempt ${row.attempt} of ${this.o.maxRetries + 1})`,
          data: { worker: row.worker_id, attempt: row.attempt },
        });
        report.requeued.push(row.id);
        continue;
      }
      const killed = row.kill_reason !== null;
      const result = blankResult(
        row.id,
        killed ? "killed" : "error",
        killed
          ? null
          : {
              code: "WORKER_LOST",
              message: `the worker running this execution (${row.worker_id}) was lost`,
              retryable: true,
            },
        { queueTimeMs: 0, retries: Math.max(0, row.attempt - 1) },
      );
      await writeFinal(c, row.id, result, now, {
        executionId: row.id,
        userId: row.user_id,
        level: killed ? "warn" : "error",
        event: result.status,
        message: killed
          ? `execution ended killed (${row.kill_reason})`
          : `execution ended error: worker ${row.worker_id} was lost`,
        data: { worker: row.worker_id, attempt: row.attempt },
      });
      report.lost.push(row.id);
    }
  }

  /**
   * A worker starting under an id that may have run before (a fixed
   * cluster.workerId, restarted after a crash): what its previous process
   * left running or open is settled first, as for a dead worker, or it
   * would stay `running` forever under a worker that looks alive.
   */
  async releaseWorker(workerId: string): Promise<ReapReport> {
    const report: ReapReport = { dead: [], requeued: [], lost: [], sessionsEnded: [], expired: [] };
    await transaction(this.o.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [LOCKS.reaper]);
      const gone = await c.query("UPDATE workers SET state = 'gone' WHERE id = $1", [workerId]);
      if (gone.rowCount) report.dead.push(workerId);
      await this.settleOrphans(c, report);
    });
    await this.endLostSessions(report);
    if (report.requeued.length > 0) await this.o.redis?.publish(channels.wake(), { t: "wake" });
    for (const id of report.lost)
      await this.o.redis?.publish(channels.exec(id), { t: "end", status: "error" });
    return report;
  }

  /** Live sessions of gone workers end `worker_lost`, each audited. */
  private async endLostSessions(report: ReapReport): Promise<void> {
    const { rows } = await this.o.pool.query<{ worker_id: string }>(
      `SELECT DISTINCT s.worker_id FROM sessions s LEFT JOIN workers w ON w.id = s.worker_id
       WHERE s.ended_at IS NULL AND (w.id IS NULL OR w.state = 'gone')`,
    );
    for (const { worker_id: workerId } of rows) {
      const ended = await this.o.store.sessions.endAllOf(workerId, "worker_lost");
      for (const s of ended) {
        report.sessionsEnded.push(s.id);
        await this.o.store.records.event({
          userId: s.userId,
          level: "warn",
          event: "session_ended",
          message: `session ${s.id} ended: its worker ${workerId} was lost`,
          data: { session: s.id, worker: workerId, reason: "worker_lost" },
        });
      }
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
