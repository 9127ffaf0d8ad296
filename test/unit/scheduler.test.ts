import { describe, expect, it } from "vitest";
import { FairQueue } from "../../src/executions/fair-queue.js";
import {
  Scheduler,
  TransientError,
  type LifecycleEvent,
  type SchedulerOptions,
} from "../../src/executions/scheduler.js";
import { blankResult, type ExecutionResult } from "../../src/contract/result.js";
import { smallRequest } from "../helpers/requests.js";

function request(userId: string, memoryMb = 100): ReturnType<typeof smallRequest> {
  return smallRequest(userId, { memoryMb });
}

function result(id: string, status: ExecutionResult["status"] = "completed"): ExecutionResult {
  return {
    ...blankResult(id, status, null, { executionTimeMs: 1, cpuTimeMs: 1, peakMemoryBytes: 1 }),
    success: status === "completed",
    exitCode: 0,
  };
}

/** A runner whose executions end only when the test says so. */
function manualRunner() {
  const pending = new Map<string, (r: ExecutionResult) => void>();
  const started: string[] = [];
  const run: SchedulerOptions["run"] = (execution, signal) =>
    new Promise((resolve) => {
      started.push(execution.userId);
      pending.set(execution.id, resolve);
      signal.addEventListener("abort", () => resolve(result(execution.id, "killed")));
    });
  const finishAll = (): void => {
    for (const [id, resolve] of pending) resolve(result(id));
    pending.clear();
  };
  return { run, started, pending, finishAll };
}

function scheduler(overrides: Partial<SchedulerOptions>): Scheduler {
  return new Scheduler({
    maxConcurrent: 50,
    maxPerUser: 5,
    maxQueueSize: 100,
    maxQueuedPerUser: 50,
    queueTimeoutMs: 60_000,
    memoryBudgetMb: 100_000,
    maxRetries: 3,
    retryBackoffMs: 1,
    reservationMb: (r) => r.limits.memoryMb,
    run: async (e) => result(e.id),
    ...overrides,
  });
}

describe("fair queue", () => {
  it("serves users round-robin, each in order", () => {
    const q = new FairQueue<{ userId: string; n: number }>();
    for (let n = 0; n < 3; n++) q.push({ userId: "a", n });
    q.push({ userId: "b", n: 0 });
    q.push({ userId: "c", n: 0 });
    const order = [];
    for (let item = q.take(() => true); item; item = q.take(() => true))
      order.push(`${item.userId}${item.n}`);
    expect(order).toEqual(["a0", "b0", "c0", "a1", "a2"]);
  });

  it("skips a user who may not start now without losing their turn order", () => {
    const q = new FairQueue<{ userId: string }>();
    q.push({ userId: "a" });
    q.push({ userId: "b" });
    expect(q.take((i) => i.userId !== "a")?.userId).toBe("b");
    expect(q.size).toBe(1);
  });
});

describe("scheduler", () => {
  it("runs five per user and queues the rest (the spec's ten sleeps)", async () => {
    const runner = manualRunner();
    const s = scheduler({ run: runner.run });
    const executions = Array.from({ length: 10 }, () => s.submit(request("alice")));
    expect(s.activeCount).toBe(5);
    expect(s.queuedCount).toBe(5);
    expect(s.canStart("alice")).toEqual({ allowed: true, reason: "user_limit" });
    expect(executions.map((e) => e.status)).toEqual([
      ...Array<string>(5).fill("running"),
      ...Array<string>(5).fill("queued"),
    ]);
    runner.finishAll();
    await Promise.all(executions.slice(0, 5).map((e) => e.done));
    await new Promise((r) => setImmediate(r));
    expect(s.activeCount).toBe(5);
    runner.finishAll();
    await Promise.all(executions.map((e) => e.done));
    expect(s.activeCount).toBe(0);
  });

  it("shares the global limit fairly between users", async () => {
    const runner = manualRunner();
    const s = scheduler({ run: runner.run, maxConcurrent: 2, maxPerUser: 2 });
    for (let i = 0; i < 4; i++) s.submit(request("heavy"));
    s.submit(request("light"));
    expect(runner.started).toEqual(["heavy", "heavy"]);
    runner.finishAll();
    await new Promise((r) => setTimeout(r, 5));
    // The light user's single job goes before the heavy user's third.
    expect(runner.started.slice(2)).toEqual(["light", "heavy"]);
  });

  it("answers SANDBOX_BUSY with a Retry-After when the queue is full", () => {
    const runner = manualRunner();
    const events: LifecycleEvent[] = [];
    const s = scheduler({ run: runner.run, maxConcurrent: 1, maxQueueSize: 2 });
    s.onEvent((e) => events.push(e));
    s.submit(request("a"));
    s.submit(request("b"));
    s.submit(request("c"));
    try {
      s.submit(request("d"));
      expect.fail("should be refused");
    } catch (error) {
      expect(error).toMatchObject({ code: "SANDBOX_BUSY", details: { reason: "queue_full" } });
      expect(
        (error as { details: { retryAfterSeconds: number } }).details.retryAfterSeconds,
      ).toBeGreaterThan(0);
    }
    expect(events.filter((e) => e.type === "rejected")).toHaveLength(1);
  });

  it("keeps the sum of running memory limits within the budget", () => {
    const runner = manualRunner();
    const s = scheduler({ run: runner.run, memoryBudgetMb: 1000 });
    s.submit(request("a", 600));
    s.submit(request("b", 600));
    expect(s.activeCount).toBe(1);
    expect(s.memoryReservedMb).toBe(600);
    expect(() => s.submit(request("c", 2000))).toThrow(/exceeds what this host can hold/);
  });

  it("rejects what waited past the queue timeout", async () => {
    const runner = manualRunner();
    const s = scheduler({ run: runner.run, maxConcurrent: 1, queueTimeoutMs: 50 });
    s.submit(request("a"));
    const waiting = s.submit(request("b"));
    const r = await waiting.done;
    expect(r).toMatchObject({
      status: "rejected",
      error: { code: "SANDBOX_BUSY", retryable: true },
    });
    runner.finishAll();
  });

  it("retries Warden's transient failures with backoff, never the program's", async () => {
    let attempts = 0;
    const s = scheduler({
      run: async (e) => {
        attempts++;
        if (attempts < 3) throw new TransientError("cgroup busy");
        return result(e.id, "failed");
      },
    });
    const r = await s.submit(request("a")).done;
    expect(attempts).toBe(3);
    expect(r).toMatchObject({ status: "failed", metrics: { retries: 2 } });

    let tries = 0;
    const noRetry = scheduler({
      run: async () => {
        tries++;
        throw new TransientError("spawn failed");
      },
      maxRetries: 2,
    });
    const failed = await noRetry.submit(request("a")).done;
    expect(tries).toBe(3);
    expect(failed).toMatchObject({
      status: "error",
      error: { code: "INTERNAL" },
      metrics: { retries: 2 },
    });

    let once = 0;
    const optOut = scheduler({
      run: async () => {
        once++;
        throw new TransientError("spawn failed");
      },
    });
    await optOut.submit({ ...request("a"), retryOnFailure: false }).done;
    expect(once).toBe(1);
  });

  it("kills queued and running executions", async () => {
    const runner = manualRunner();
    const s = scheduler({ run: runner.run, maxConcurrent: 1 });
    const running = s.submit(request("a"));
    const queued = s.submit(request("a"));
    expect(s.kill(queued.id, "user")).toBe(true);
    expect((await queued.done).status).toBe("killed");
    expect(s.kill(running.id, "admin")).toBe(true);
    expect((await running.done).status).toBe("killed");
    expect(s.kill("exec_nope", "x")).toBe(false);
  });

  it("drains: refuses new work, drops the queue, kills what outlives the deadline", async () => {
    const runner = manualRunner();
    const s = scheduler({ run: runner.run, maxConcurrent: 1 });
    const running = s.submit(request("a"));
    const queued = s.submit(request("a"));
    await s.drain(20);
    expect((await queued.done).error?.code).toBe("SANDBOX_BUSY");
    expect((await running.done).status).toBe("killed");
    expect(() => s.submit(request("a"))).toThrow(/shutting down/);
  });
});
