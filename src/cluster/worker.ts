/**
 * A worker node's side of the queue: its row in `workers` (what it can run,
 * its load, its heartbeat), the claim loop, and each claimed job run through
 * the local engine with its output published on `exec:<id>` and its end
 * written fenced. A worker whose row says `gone` (the reaper declared it
 * dead) kills its runs and claims nothing more: their jobs are already
 * someone else's. SIGTERM drains: no claims, runs finish, row `gone`.
 */
import type pg from "pg";
import type { Logger } from "../audit/logger.js";
import { toErrorInfo, WardenError } from "../errors.js";
import { blankResult, type ExecutionResult } from "../contract/result.js";
import type { Execution, ExecutionRequest } from "../executions/execution.js";
import type { NewEvent } from "../store/records.js";
import { channels, KillMessageSchema, parseMessage } from "./events.js";
import { fromJob, QueuedJobSchema, type QueuedJob } from "./job.js";
import type { ClaimedJob, ClusterQueue } from "./queue.js";
import type { ClusterRedis } from "./redis.js";
import { DB_NOW_MS } from "./reaper.js";

/** What the worker needs of the local engine (the ExecutionService's scheduler). */
export interface LocalEngine {
  readonly activeCount: number;
  readonly maxConcurrent: number;
  /** Memory this host can still reserve for a run (MiB). */
  freeMemoryMb(): number;
  readonly memoryReservedMb: number;
  readonly memoryBudgetMb: number;
  /** Starts a run that already fits (the worker claimed it only with room). */
  run(request: ExecutionRequest, id: string): Execution;
  kill(id: string, reason: string): boolean;
  /** Live sessions on this worker. */
  sessionCount(): number;
  /** Ends every live session here (the cluster declared this worker gone and ended them). */
  endSessions?(reason: string): Promise<void>;
}

export interface WorkerOptions {
  pool: pg.Pool;
  redis: ClusterRedis;
  queue: ClusterQueue;
  logger: Logger;
  id: string;
  name: string;
  version: string;
  /** Where API nodes reach its internal listener. */
  url: string;
  heartbeatMs: number;
  /** How often to look for work without a wake-up. @default 500 */
  pollMs?: number;
  languages: () => string[];
  /** The runtimes this worker detected, with versions (GET /v1/runtimes on API nodes). */
  runtimes?: () => Promise<{ language: string; version: string | null }[]>;
  environments: () => Promise<string[]>;
  engine: LocalEngine;
  /** The job's environment and egress, resolved against THIS worker's store and config. */
  resolve: (job: QueuedJob) => {
    limits: ExecutionRequest["limits"];
    environment: ExecutionRequest["environment"];
    network: ExecutionRequest["network"];
    judge?: ExecutionRequest["judge"];
  };
  /** Static analysis an API node could not do; a result = refused (status rejected). */
  beforeRun?: (job: QueuedJob, claimed: ClaimedJob) => Promise<ExecutionResult | null>;
  /** Waits between tries of the final write: the first, and the longest. @default 250 and 5000 */
  finishRetryMs?: { first: number; max: number };
}

type WorkerState = "active" | "draining" | "gone";

/** Output is re-chunked so no message nears events.MAX_MESSAGE_BYTES even fully JSON-escaped. */
const PUBLISH_CHARS = 32 * 1024;
/** Failed tries of a final write before it is logged as an error (it is still retried). */
const FINISH_ATTEMPTS = 8;

export class ClusterWorker {
  private state: WorkerState = "active";
  /** Declared gone while active (not draining or closed): it comes back once its runs are over. */
  private rejoinable = false;
  private readonly runs = new Map<string, { claimed: ClaimedJob; execution: Execution | null }>();
  private claiming = false;
  private again = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unsubscribe: (() => void)[] = [];
  private readonly pollMs: number;

  constructor(private readonly o: WorkerOptions) {
    this.pollMs = o.pollMs ?? 500;
  }

  get id(): string {
    return this.o.id;
  }

  /** Jobs claimed and not yet finished here. */
  get runningIds(): string[] {
    return [...this.runs.keys()];
  }

  async start(): Promise<void> {
    await this.register();
    this.unsubscribe.push(
      this.o.redis.subscribe(channels.wake(), () => this.pump()),
      this.o.redis.subscribe(channels.kill(this.o.id), (raw) => {
        const m = parseMessage(KillMessageSchema, raw);
        if (m && this.runs.has(m.id)) this.o.engine.kill(m.id, m.reason);
      }),
    );
    const beat = setInterval(() => void this.heartbeat(), this.o.heartbeatMs);
    const poll = setInterval(() => this.pump(), this.pollMs);
    beat.unref();
    poll.unref();
    this.timers.push(beat, poll);
    this.pump();
  }

  /** Writes this worker's row as `active` (a new row, or the one it had). */
  private async register(): Promise<void> {
    await this.o.pool.query(
      `INSERT INTO workers (id, name, version, url, state, started_at, heartbeat_at, max_concurrent,
         memory_budget_mb, languages, environments, runtimes)
       VALUES ($1, $2, $3, $4, 'active', ${DB_NOW_MS}, ${DB_NOW_MS}, $5, $6, $7, $8, $9)
       ON CONFLICT (id) DO UPDATE SET name = $2, version = $3, url = $4, state = 'active',
         started_at = ${DB_NOW_MS}, heartbeat_at = ${DB_NOW_MS}, max_concurrent = $5,
         memory_budget_mb = $6, languages = $7, environments = $8, runtimes = $9`,
      [
        this.o.id,
        this.o.name,
        this.o.version,
        this.o.url,
        this.o.engine.maxConcurrent,
        this.o.engine.memoryBudgetMb,
        JSON.stringify(this.o.languages()),
        JSON.stringify(await this.o.environments()),
        JSON.stringify(
          (await this.o.runtimes?.()) ??
            this.o.languages().map((language) => ({ language, version: null })),
        ),
      ],
    );
  }

  /** Writes the heartbeat and load; acts on `gone` and on kills missed over Redis. */
  async heartbeat(): Promise<void> {
    try {
      const { rows } = await this.o.pool.query<{ state: WorkerState }>(
        `UPDATE workers SET heartbeat_at = ${DB_NOW_MS}, running = $2, sessions = $3,
           memory_reserved_mb = $4, state = CASE WHEN state = 'gone' THEN 'gone' ELSE $5 END
         WHERE id = $1 RETURNING state`,
        [
          this.o.id,
          this.runs.size,
          this.o.engine.sessionCount(),
          Math.round(this.o.engine.memoryReservedMb),
          this.state === "gone" ? "gone" : this.state,
        ],
      );
      if ((rows[0]?.state ?? "gone") === "gone" && this.state !== "gone") this.declaredDead();
      else if (this.rejoinable && this.runs.size === 0) await this.rejoin();
      for (const k of await this.o.queue.killsFor(this.o.id, this.runningIds))
        this.o.engine.kill(k.id, k.reason);
    } catch (error) {
      this.o.logger.warn({ reason: (error as Error).message }, "heartbeat failed");
    }
  }

  /**
   * The reaper declared this worker dead (a pause, a network split): its jobs
   * went back to the queue or ended, its sessions were reported ended. It
   * kills what it still runs, ends those sessions here too, and rejoins once
   * nothing of its old life is left running.
   */
  private declaredDead(): void {
    this.o.logger.error({ worker: this.o.id }, "declared gone by the cluster: killing local runs");
    this.rejoinable = this.state === "active";
    this.state = "gone";
    for (const id of this.runs.keys()) this.o.engine.kill(id, "worker declared gone");
    void this.o.engine
      .endSessions?.("worker declared gone")
      .catch((error: unknown) => this.o.logger.warn({ err: error }, "cannot end local sessions"));
  }

  /** Back as `active` under the same id: every run it had ended here (their finishes were fenced off). */
  private async rejoin(): Promise<void> {
    await this.register();
    this.rejoinable = false;
    this.state = "active";
    this.o.logger.warn({ worker: this.o.id }, "rejoined the cluster after being declared gone");
    this.pump();
  }

  private hasRoom(): boolean {
    return (
      this.state === "active" &&
      this.runs.size < this.o.engine.maxConcurrent &&
      this.o.engine.activeCount < this.o.engine.maxConcurrent &&
      this.o.engine.freeMemoryMb() > 0
    );
  }

  /** Claims while there is room; one claim loop at a time (a call meanwhile runs it again). */
  pump(): void {
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = true;
    void (async () => {
      do {
        this.again = false;
        while (this.hasRoom()) {
          const claimed = await this.o.queue
            .claim({
              workerId: this.o.id,
              languages: this.o.languages(),
              environments: await this.o.environments(),
              freeMemoryMb: this.o.engine.freeMemoryMb(),
            })
            .catch((error: unknown) => {
              this.o.logger.warn({ reason: (error as Error).message }, "claim failed");
              return null;
            });
          if (!claimed) break;
          this.runs.set(claimed.id, { claimed, execution: null });
          void this.run(claimed);
        }
      } while (this.again && this.hasRoom());
      this.claiming = false;
    })();
  }

  private async run(claimed: ClaimedJob): Promise<void> {
    let result: ExecutionResult;
    try {
      result = await this.execute(claimed);
    } catch (error) {
      result = blankResult(
        claimed.id,
        error instanceof WardenError && error.code !== "INTERNAL" ? "rejected" : "error",
        toErrorInfo(error),
      );
      if (!(error instanceof WardenError))
        this.o.logger.error({ err: error, executionId: claimed.id }, "claimed job failed");
    }
    result.metrics.queueTimeMs = claimed.startedAt - claimed.createdAt;
    await this.finish(claimed, result);
    this.runs.delete(claimed.id);
    this.pump();
  }

  private async execute(claimed: ClaimedJob): Promise<ExecutionResult> {
    const parsed = QueuedJobSchema.safeParse(JSON.parse(claimed.request));
    if (!parsed.success)
      throw new WardenError("INTERNAL", "the queued request is not one this worker can read");
    const job = parsed.data;
    const refused = this.o.beforeRun ? await this.o.beforeRun(job, claimed) : null;
    if (refused) return refused;
    const request = fromJob(job, claimed, this.o.resolve(job));
    const execution = this.o.engine.run(request, claimed.id);
    const entry = this.runs.get(claimed.id);
    if (entry) entry.execution = execution;
    const channel = channels.exec(claimed.id);
    void this.o.redis.publish(channel, { t: "status", status: "running" });
    execution.on("output", (chunk) => {
      for (let at = 0; at < chunk.data.length; at += PUBLISH_CHARS)
        void this.o.redis.publish(channel, {
          t: "output",
          stream: chunk.stream,
          data: chunk.data.slice(at, at + PUBLISH_CHARS),
        });
    });
    // A case's result is bounded (judging.caseOutputBytes per stream): one message each.
    execution.on("test", (result) => void this.o.redis.publish(channel, { t: "test", result }));
    return execution.done;
  }

  /**
   * The fenced final write, retried until it is written or fenced out; then
   * the end is announced. Never given up while this process lives: the row
   * is `running` under a worker that heartbeats, so no reaper would ever end
   * it (it would count against its user's and the cluster's caps forever).
   * A PostgreSQL down for long enough gets this worker declared gone, and
   * then the fence answers.
   */
  private async finish(claimed: ClaimedJob, result: ExecutionResult): Promise<void> {
    let event = endEvent(claimed, result, this.runs.get(claimed.id)?.execution ?? null);
    const wait = this.o.finishRetryMs ?? { first: 250, max: 5000 };
    for (let attempt = 1; ; attempt++) {
      try {
        const written = await this.o.queue.finish(
          { id: claimed.id, workerId: this.o.id, attempt: claimed.attempt },
          result,
          event,
        );
        if (!written) {
          this.o.logger.warn(
            { executionId: claimed.id, attempt: claimed.attempt },
            "result dropped: this job is no longer this worker's (declared dead meanwhile)",
          );
          return;
        }
        await this.o.redis.publish(channels.exec(claimed.id), { t: "end", status: result.status });
        return;
      } catch (error) {
        if (attempt === FINISH_ATTEMPTS) {
          this.o.logger.error(
            { err: error, executionId: claimed.id },
            "cannot record the result; recording an error without it",
          );
          // Something in this result may be what the database refuses: the bare end is written instead.
          result = blankResult(claimed.id, "error", {
            code: "INTERNAL",
            message: "the result of this execution could not be recorded",
            retryable: true,
          });
          event = endEvent(claimed, result, null);
        }
        const ms = Math.min(wait.max, wait.first * 2 ** Math.min(attempt - 1, 20));
        await new Promise((r) => setTimeout(r, ms));
      }
    }
  }

  /**
   * Drain (SIGTERM): no more claims, runs get `graceMs` to finish (then they
   * are killed and recorded), the row goes `gone`.
   */
  async drain(graceMs: number): Promise<void> {
    this.rejoinable = false;
    if (this.state === "active") this.state = "draining";
    await this.heartbeat();
    const waiting = [...this.runs.values()].flatMap((r) => (r.execution ? [r.execution.done] : []));
    const killer = setTimeout(() => {
      for (const id of this.runs.keys()) this.o.engine.kill(id, "shutdown");
    }, graceMs);
    await Promise.all(waiting);
    while (this.runs.size > 0) await new Promise((r) => setTimeout(r, 50));
    clearTimeout(killer);
    await this.close();
  }

  /** Stops timers and subscriptions; marks the row `gone`. Safe to call twice. */
  async close(): Promise<void> {
    this.rejoinable = false;
    this.state = "gone";
    for (const t of this.timers.splice(0)) clearInterval(t);
    for (const u of this.unsubscribe.splice(0)) u();
    await this.o.pool
      .query("UPDATE workers SET state = 'gone' WHERE id = $1", [this.o.id])
      .catch((error: Error) => this.o.logger.warn({ reason: error.message }, "cannot mark gone"));
  }
}

/** The audit event of a run's end, as the single node's recorder writes it. */
function endEvent(
  claimed: ClaimedJob,
  result: ExecutionResult,
  execution: Execution | null,
): NewEvent {
  const level =
    result.status === "completed" || result.status === "failed"
      ? "info"
      : result.status === "error"
        ? "error"
        : "warn";
  const why = execution?.killReason
    ? ` (${execution.killReason})`
    : result.error
      ? `: ${result.error.message}`
      : "";
  return {
    executionId: claimed.id,
    userId: claimed.userId,
    level,
    event: result.status,
    message: `execution ended ${result.status}${why}`,
    data: { exitCode: result.exitCode, signal: result.signal, metrics: result.metrics },
  };
}
