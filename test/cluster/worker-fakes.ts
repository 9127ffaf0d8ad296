/** A stand-in for the local engine: runs "take" `ms` and print their code, without a sandbox. */
import { Execution, type ExecutionRequest } from "../../src/executions/execution.js";
import { blankResult } from "../../src/contract/result.js";
import type pg from "pg";
import { silentLogger } from "../../src/audit/logger.js";
import type { ClusterQueue } from "../../src/cluster/queue.js";
import type { ClusterRedis } from "../../src/cluster/redis.js";
import type { LocalEngine, WorkerOptions } from "../../src/cluster/worker.js";
import { Metrics } from "../../src/executions/metrics.js";

export class FakeEngine implements LocalEngine {
  readonly runs = new Map<string, Execution>();
  readonly started: string[] = [];
  memoryReservedMb = 0;
  memoryBudgetMb = 4096;
  sessions = 0;

  constructor(
    readonly maxConcurrent = 4,
    private readonly ms = 50,
  ) {}

  get activeCount(): number {
    return this.runs.size;
  }

  freeMemoryMb(): number {
    return this.memoryBudgetMb - this.memoryReservedMb;
  }

  sessionCount(): number {
    return this.sessions;
  }

  /** Why the worker ended its sessions, each time it did. */
  readonly sessionsEnded: string[] = [];

  endSessions(reason: string): Promise<void> {
    this.sessionsEnded.push(reason);
    this.sessions = 0;
    return Promise.resolve();
  }

  run(request: ExecutionRequest, id: string): Execution {
    const e = new Execution(id, request);
    this.runs.set(id, e);
    this.started.push(id);
    e.setStatus("running");
    const code = String(request.files[0]?.content ?? "");
    const wait = /sleep/.test(code) ? 60_000 : this.ms;
    const timer = setTimeout(() => {
      e.pushOutput({ stream: "stdout", data: `ran ${code}\n` });
      e.finish({ ...blankResult(id, "completed", null), exitCode: 0, stdout: `ran ${code}\n` });
    }, wait);
    void e.done.then(() => {
      clearTimeout(timer);
      this.runs.delete(id);
    });
    return e;
  }

  kill(id: string, reason: string): boolean {
    const e = this.runs.get(id);
    if (!e) return false;
    e.killReason = reason;
    e.finishWithout("killed", null);
    return true;
  }
}

/** A worker over a fake engine, as the worker tests start them (fast heartbeats and polls). */
export function fakeWorkerOptions(o: {
  pool: pg.Pool;
  redis: ClusterRedis;
  queue: ClusterQueue;
  id: string;
  engine: LocalEngine;
}): WorkerOptions {
  return {
    ...o,
    logger: silentLogger,
    name: o.id,
    version: "test",
    url: "http://127.0.0.1:1",
    heartbeatMs: 100,
    pollMs: 100,
    languages: () => ["python"],
    environments: async () => [],
    resolve: (job) => ({ limits: job.limits, environment: null, network: null }),
  };
}

/** Metrics whose local gauges stay 0 (an API node's, or a test's). */
export const quietMetrics = (): Metrics =>
  new Metrics({ queueDepth: () => 0, activeSandboxes: () => 0, memoryReservedMb: () => 0 });

/** Polls `what` until it holds, failing after `ms`. */
export async function until(what: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 25));
  }
}
