/**
 * The cluster's queue IS the executions table (docs/cluster.md says why not
 * BullMQ): a queued row carries its request; a claim turns it `running` with
 * the claiming worker's id and a bumped `attempt`, in the same statement
 * that applies the fair order and the caps; the finish is fenced on
 * (worker_id, attempt), so a worker declared dead cannot overwrite what its
 * job became after (re-queued, re-run elsewhere, ended WORKER_LOST).
 */
import { splitOutput } from "../store/records.js";
import type pg from "pg";
import { WardenError, type ErrorInfo } from "../errors.js";
import { blankResult, type ExecutionResult, type ExecutionStatus } from "../contract/result.js";
import type { SandboxLimits } from "../contract/limits.js";
import { digestFiles, type NewEvent } from "../store/records.js";
import { encodeOutput } from "../store/output-codec.js";
import { safeParams } from "../store/pg/pool.js";
import { countFinished } from "../store/pg/usage.js";
import { insertEvent, LOCKS, transaction } from "./sql.js";
import { JOB_PREFIX, type QueuedJob } from "./job.js";

/** The environment's name at the start of a queued row (SQL regex; the prefix's `{` escaped). */
const ENVIRONMENT_AT_START = `^\\${JOB_PREFIX}([a-z0-9._-]{1,63})"`;

export interface QueueLimits {
  maxQueueSize: number;
  maxQueuedPerUser: number;
  /** maxSandboxesPerUser: running executions + live sessions of a user, cluster-wide. */
  maxPerUser: number;
  /** cluster.maxConcurrentTotal; 0 = none. */
  maxConcurrentTotal: number;
}

export interface NewQueued {
  id: string;
  userId: string;
  keyId: string | null;
  source: string;
  language: string;
  files: readonly { path: string; content: string | Buffer }[];
  limits: SandboxLimits;
  job: QueuedJob;
  reservationMb: number;
  createdAt: number;
}

/** What a worker can take now. */
export interface WorkerRoom {
  workerId: string;
  languages: readonly string[];
  environments: readonly string[];
  /** Memory this worker can still reserve (MiB). */
  freeMemoryMb: number;
}

export interface ClaimedJob {
  id: string;
  userId: string;
  keyId: string | null;
  attempt: number;
  createdAt: number;
  startedAt: number;
  reservationMb: number;
  /** The request JSON as stored: the worker parses it (QueuedJobSchema). */
  request: string;
}

/** Writes a final state, its output and its event on `c`; the caller's WHERE decided it may. */
export async function writeFinal(
  c: pg.PoolClient,
  id: string,
  result: ExecutionResult,
  at: number,
  event: NewEvent,
): Promise<void> {
  const { rest, output } = splitOutput(result);
  // Usage is counted with the fenced final write, so a worker's finish counts once.
  await countFinished(c, id, result, at);
  await c.query(
    "UPDATE executions SET status = $2, result = $3, finished_at = $4, request = NULL WHERE id = $1",
    safeParams([id, result.status, JSON.stringify(rest), at]),
  );
  for (const [stream, text] of output)
    await c.query(
      `INSERT INTO execution_output (execution_id, stream, data) VALUES ($1, $2, $3)
       ON CONFLICT (execution_id, stream) DO UPDATE SET data = EXCLUDED.data`,
      [id, stream, encodeOutput(text)],
    );
  await insertEvent(c, event, at);
}

export class ClusterQueue {
  constructor(
    private readonly pool: pg.Pool,
    private readonly limits: QueueLimits,
  ) {}

  /**
   * Queues a validated request, or throws SANDBOX_BUSY when the cluster's
   * queue (or this user's share of it) is full. The row is written first,
   * then the count (its own row included) is taken under one lock held to
   * the commit, so two API nodes cannot both take the last place. Writing
   * first keeps the lock, which every submit in the cluster waits on, off
   * the slow part: a request at the body limit (megabytes of base64) written
   * under it made every other submit, and its pool connection, wait.
   */
  async submit(r: NewQueued): Promise<void> {
    const digest = digestFiles(r.files);
    const request = JSON.stringify(r.job);
    await transaction(this.pool, async (c) => {
      await c.query(
        `INSERT INTO executions (id, user_id, key_id, source, language, status, code_sha256, code_bytes,
           limits, created_at, request, reservation_mb)
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, $11)`,
        [
          r.id,
          r.userId,
          r.keyId,
          r.source,
          r.language,
          digest.sha256,
          digest.bytes,
          JSON.stringify(r.limits),
          r.createdAt,
          request,
          r.reservationMb,
        ],
      );
      await insertEvent(
        c,
        {
          executionId: r.id,
          userId: r.userId,
          level: "info",
          event: "queued",
          message: `${r.language} execution queued`,
          data: { source: r.source },
        },
        r.createdAt,
      );
      await c.query("SELECT pg_advisory_xact_lock($1)", [LOCKS.submit]);
      const { rows } = await c.query<{ total: string; mine: string }>(
        `SELECT count(*) AS total, count(*) FILTER (WHERE user_id = $1) AS mine
         FROM executions WHERE status = 'queued'`,
        [r.userId],
      );
      // Both counts hold this row: the places taken before it are one fewer.
      const total = Number(rows[0]?.total ?? 0) - 1;
      const mine = Number(rows[0]?.mine ?? 0) - 1;
      const reason =
        total >= this.limits.maxQueueSize
          ? "queue_full"
          : mine >= this.limits.maxQueuedPerUser
            ? "user_queue_full"
            : null;
      if (reason)
        throw new WardenError(
          "SANDBOX_BUSY",
          reason === "queue_full"
            ? `the queue is full (${this.limits.maxQueueSize} waiting)`
            : `you already have ${this.limits.maxQueuedPerUser} executions waiting`,
          { details: { reason, retryAfterSeconds: 1 } },
        );
    });
  }

  /**
   * Claims the next job for a worker with room, or null. Under one lock
   * (every claimer sees every committed claim): the user with the fewest
   * running executions cluster-wide goes first (ties: the oldest job),
   * users at maxSandboxesPerUser (running + live sessions) wait, jobs this
   * worker cannot hold (memory, language, environment) are left for others,
   * and nothing starts past cluster.maxConcurrentTotal.
   *
   * The environment is read from the row's first 128 characters, where
   * toJob puts it (job.ts, JOB_PREFIX; names are at most 63 of [a-z0-9._-]):
   * looking at the whole text (strpos, or parsing) read every queued row's
   * full request — files in base64, up to the body limit each — on every
   * claim, under the claim lock: 100 queued 4 MiB requests of one user made
   * every claim in the cluster ~100 times slower.
   */
  async claim(room: WorkerRoom, now = Date.now()): Promise<ClaimedJob | null> {
    return transaction(this.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [LOCKS.claim]);
      const { rows } = await c.query<{ id: string }>(
        `WITH running AS (
           SELECT user_id, count(*) AS n FROM executions WHERE status = 'running' GROUP BY user_id
         ), live AS (
           SELECT user_id, count(*) AS n FROM sessions WHERE ended_at IS NULL GROUP BY user_id
         )
         SELECT e.id FROM executions e
           LEFT JOIN running r ON r.user_id = e.user_id
           LEFT JOIN live l ON l.user_id = e.user_id
         WHERE e.status = 'queued' AND e.request IS NOT NULL
           AND coalesce(r.n, 0) + coalesce(l.n, 0) < $1
           AND e.reservation_mb <= $2
           AND e.language = ANY($3::text[])
           AND coalesce(substring(left(e.request, 128) from $6), '') = ANY(array_append($4::text[], ''))
           AND ($5 = 0 OR (SELECT count(*) FROM executions WHERE status = 'running') < $5)
         ORDER BY coalesce(r.n, 0), e.created_at, e.id
         LIMIT 1
         FOR UPDATE OF e SKIP LOCKED`,
        [
          this.limits.maxPerUser,
          room.freeMemoryMb,
          room.languages,
          room.environments,
          this.limits.maxConcurrentTotal,
          ENVIRONMENT_AT_START,
        ],
      );
      const id = rows[0]?.id;
      if (!id) return null;
      const claimed = await c.query<{
        user_id: string;
        key_id: string | null;
        attempt: number;
        created_at: string;
        reservation_mb: number;
        request: string;
      }>(
        `UPDATE executions SET status = 'running', worker_id = $2, attempt = attempt + 1, started_at = $3
         WHERE id = $1 RETURNING user_id, key_id, attempt, created_at, reservation_mb, request`,
        [id, room.workerId, now],
      );
      const row = claimed.rows[0]!;
      await insertEvent(
        c,
        {
          executionId: id,
          userId: row.user_id,
          level: "info",
          event: "started",
          message: `sandbox started on worker ${room.workerId}`,
          data: { worker: room.workerId, attempt: row.attempt },
        },
        now,
      );
      return {
        id,
        userId: row.user_id,
        keyId: row.key_id,
        attempt: row.attempt,
        createdAt: Number(row.created_at),
        startedAt: now,
        reservationMb: row.reservation_mb,
        request: row.request,
      };
    });
  }

  /**
   * Writes the final state of a claimed job, fenced: only while it is still
   * `running` under this worker and this attempt. False = this worker lost
   * the job (declared dead meanwhile); nothing was written.
   */
  async finish(
    job: { id: string; workerId: string; attempt: number },
    result: ExecutionResult,
    event: NewEvent,
    at = Date.now(),
  ): Promise<boolean> {
    return transaction(this.pool, async (c) => {
      const { rowCount } = await c.query(
        `SELECT 1 FROM executions WHERE id = $1 AND worker_id = $2 AND attempt = $3 AND status = 'running'
         FOR UPDATE`,
        [job.id, job.workerId, job.attempt],
      );
      if (!rowCount) return false;
      await writeFinal(c, job.id, result, at, event);
      return true;
    });
  }

  /**
   * Kills an execution. Queued: it ends `killed` here and now. Running: its
   * `kill_reason` is set (the worker reads it at its next heartbeat even if
   * the Redis message is lost) and the caller tells the worker. Null when
   * it is not queued or running.
   */
  async kill(
    id: string,
    reason: string,
  ): Promise<{ was: "queued" | "running"; workerId: string | null; userId: string } | null> {
    return transaction(this.pool, async (c) => {
      const { rows } = await c.query<{
        status: string;
        worker_id: string | null;
        user_id: string;
        created_at: string;
      }>(
        `SELECT status, worker_id, user_id, created_at FROM executions
         WHERE id = $1 AND status IN ('queued', 'running') FOR UPDATE`,
        [id],
      );
      const row = rows[0];
      if (!row) return null;
      await c.query(
        "UPDATE executions SET kill_reason = $2 WHERE id = $1",
        safeParams([id, reason.slice(0, 500)]),
      );
      if (row.status === "running")
        return { was: "running" as const, workerId: row.worker_id, userId: row.user_id };
      const now = Date.now();
      const result = blankResult(id, "killed", null, {
        queueTimeMs: now - Number(row.created_at),
        retries: 0,
      });
      await writeFinal(c, id, result, now, {
        executionId: id,
        userId: row.user_id,
        level: "warn",
        event: "killed",
        message: `execution ended killed (${reason})`,
      });
      return { was: "queued" as const, workerId: null, userId: row.user_id };
    });
  }

  /** Queued jobs older than `queueTimeoutMs` end `rejected` (SANDBOX_BUSY), as on a single node. */
  async expireQueued(queueTimeoutMs: number, now = Date.now()): Promise<string[]> {
    return transaction(this.pool, async (c) => {
      const { rows } = await c.query<{ id: string; user_id: string; created_at: string }>(
        `SELECT id, user_id, created_at FROM executions WHERE status = 'queued' AND created_at < $1
         ORDER BY created_at LIMIT 500 FOR UPDATE SKIP LOCKED`,
        [now - queueTimeoutMs],
      );
      const error: ErrorInfo = {
        code: "SANDBOX_BUSY",
        message: `no sandbox became free within the queue timeout (${Math.round(queueTimeoutMs / 1000)} s)`,
        retryable: true,
      };
      for (const row of rows) {
        const result = blankResult(row.id, "rejected", error, {
          queueTimeMs: now - Number(row.created_at),
          retries: 0,
        });
        await writeFinal(c, row.id, result, now, {
          executionId: row.id,
          userId: row.user_id,
          level: "warn",
          event: "rejected",
          message: `execution ended rejected: ${error.message}`,
        });
      }
      return rows.map((r) => r.id);
    });
  }

  /** Running executions this worker should abort: killed while running, or no longer its own. */
  async killsFor(
    workerId: string,
    ids: readonly string[],
  ): Promise<{ id: string; reason: string }[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.pool.query<{
      id: string;
      kill_reason: string | null;
      mine: boolean;
    }>(
      `SELECT id, kill_reason, (status = 'running' AND worker_id = $1) AS mine
       FROM executions WHERE id = ANY($2::text[])`,
      [workerId, ids],
    );
    return rows
      .filter((r) => r.kill_reason !== null || !r.mine)
      .map((r) => ({
        id: r.id,
        reason: r.kill_reason ?? "no longer this worker's (declared dead)",
      }));
  }

  /** Status of an execution, or null. */
  async statusOf(id: string): Promise<ExecutionStatus | null> {
    const { rows } = await this.pool.query<{ status: ExecutionStatus }>(
      "SELECT status FROM executions WHERE id = $1",
      [id],
    );
    return rows[0]?.status ?? null;
  }
}
