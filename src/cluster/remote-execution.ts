/**
 * An execution running on some worker, as an API node follows it: the same
 * `Execution` the routes know, fed from Redis (`exec:<id>`: output, status,
 * end) and settled from PostgreSQL. Redis may drop a message (it keeps
 * nothing), so `done` does not depend on it: the record is also polled on a
 * slow timer and whichever sees the final state first settles it. Output
 * from Redis is counted as it arrives and cut at the run's own caps: a
 * publisher cannot grow an API node's memory past what the run may write.
 */
import { Execution, type ExecutionRequest } from "../executions/execution.js";
import { blankResult, type ExecutionResult, type ExecutionStatus } from "../contract/result.js";
import { channels, ExecMessageSchema, parseMessage } from "./events.js";
import { MAX_JOB_CASES } from "./job.js";
import type { ClusterRedis } from "./redis.js";

const FINAL = new Set<ExecutionStatus>(["queued", "running"]);
export const isFinal = (s: ExecutionStatus): boolean => !FINAL.has(s);

export interface FollowOptions {
  id: string;
  request: ExecutionRequest;
  redis: ClusterRedis;
  /** The stored result once final, "pending" while queued/running, null when there is no record. */
  load: (id: string) => Promise<ExecutionResult | "pending" | null>;
  /** Safety-net poll of the record. @default 2000 */
  pollMs?: number;
  onError?: (error: unknown) => void;
  /** Live output held across every execution this node follows (see FollowBudget). */
  budget?: FollowBudget;
}

/**
 * Live output bytes held at once across all the executions an API node
 * follows. Each one's own cap bounds one run, but an API node follows every
 * run of the cluster that its clients submitted or watch: without a shared
 * bound its memory would grow with the number of workers (every running
 * execution writing its full outputBytes) or with a publisher on Redis. Past
 * the budget live chunks are dropped; the final result still comes whole from
 * the record.
 */
export class FollowBudget {
  private used = 0;
  constructor(readonly maxBytes: number) {}
  get usedBytes(): number {
    return this.used;
  }
  take(bytes: number): boolean {
    if (this.used + bytes > this.maxBytes) return false;
    this.used += bytes;
    return true;
  }
  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

/** A followed execution; `stop()` ends the following (unsubscribes, stops polling) without settling it. */
export interface Followed {
  execution: Execution;
  /** Settles `done` from the record now (after the caller's own write, e.g. a kill). */
  check(): Promise<void>;
  stop(): void;
}

export function followExecution(o: FollowOptions): Followed {
  const execution = new Execution(o.id, o.request);
  // Each stream's cap as the worker enforces it, and room for the cut marker.
  const cap = 2 * (o.request.limits.outputBytes + 1024);
  let received = 0;
  const judge = o.request.judge;
  // A suite's count is known to the worker only: then a row's own bound.
  const maxTests = judge ? (judge.suiteId ? MAX_JOB_CASES : judge.cases.length) : 0;
  /** Bytes this execution holds of `o.budget`, given back when it stops. */
  let held = 0;
  let stopped = false;
  let loading = false;

  const check = async (): Promise<void> => {
    if (stopped || loading) return;
    loading = true;
    try {
      const result = await o.load(o.id);
      if (result === "pending" || stopped) return;
      settle(
        result ??
          blankResult(o.id, "error", {
            code: "INTERNAL",
            message: "the execution's record is gone",
            retryable: false,
          }),
      );
    } catch (error) {
      o.onError?.(error);
    } finally {
      loading = false;
    }
  };

  const unsubscribe = o.redis.subscribe(channels.exec(o.id), (raw) => {
    const m = parseMessage(ExecMessageSchema, raw);
    if (!m || stopped) return;
    if (m.t === "output") {
      const bytes = Buffer.byteLength(m.data);
      received += bytes;
      if (received > cap || (o.budget && !o.budget.take(bytes))) return;
      held += bytes;
      execution.pushOutput({ stream: m.stream, data: m.data });
    } else if (m.t === "test") {
      // At most one per case, and held within the shared budget: a publisher cannot
      // grow this node's memory past either.
      const bytes = Buffer.byteLength(JSON.stringify(m.result));
      if (execution.tests.length >= maxTests || (o.budget && !o.budget.take(bytes))) return;
      held += bytes;
      execution.pushTest(m.result);
    } else if (m.t === "status") {
      if (!isFinal(m.status) && m.status !== execution.status) {
        if (m.status === "running") execution.startedAt ??= Date.now();
        execution.setStatus(m.status);
      }
    } else void check();
  });
  const timer = setInterval(() => void check(), o.pollMs ?? 2000);
  timer.unref();

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    unsubscribe();
    o.budget?.give(held);
    held = 0;
  };
  const settle = (result: ExecutionResult): void => {
    stop();
    execution.finish(result);
  };
  return { execution, check, stop };
}
