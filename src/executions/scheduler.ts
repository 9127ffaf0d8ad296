/**
 * Admission and scheduling: global and per-user concurrency, a bounded queue
 * served round-robin across users, a queue timeout, a memory budget for the
 * sum of running limits, retries of Warden's own transient failures, kills,
 * and a graceful drain. It knows nothing of HTTP or storage: it reports every
 * lifecycle step to its listeners.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { toErrorInfo, WardenError } from "../errors.js";
import { blankResult, type ExecutionResult } from "../contract/result.js";
import { executionId } from "../util/ids.js";
import { Execution, type ExecutionRequest } from "./execution.js";
import { FairQueue } from "./fair-queue.js";
import { MemoryBudget, type MemoryBudgetMode } from "./memory-budget.js";

export interface SchedulerOptions {
  maxConcurrent: number;
  maxPerUser: number;
  maxQueueSize: number;
  maxQueuedPerUser: number;
  queueTimeoutMs: number;
  /** Sum of running memory reservations may not exceed this. */
  memoryBudgetMb: number;
  /**
   * How running executions count against the budget (src/executions/memory-budget.ts):
   * their whole limit (`reserve`, the default) or the kernel's measure of their use.
   */
  memory?: {
    mode: MemoryBudgetMode;
    admissionMb: number;
    pollMs: number;
    readUsageMb: () => Promise<number>;
    onReadError?: (error: unknown) => void;
  };
  maxRetries: number;
  retryBackoffMs: number;
  /** Memory an execution holds while it runs (its largest step). */
  reservationMb: (request: ExecutionRequest) => number;
  /** Runs one attempt. Throws `TransientError` for Warden-side failures worth retrying. */
  run: (execution: Execution, signal: AbortSignal) => Promise<ExecutionResult>;
}

export type LifecycleEvent =
  | { type: "queued"; execution: Execution }
  | { type: "started"; execution: Execution }
  | { type: "retried"; execution: Execution; attempt: number; reason: string }
  | { type: "finished"; execution: Execution; result: ExecutionResult }
  | { type: "rejected"; request: ExecutionRequest; reason: string; error: WardenError };

/** A failure of Warden's own (spawn, cgroup, mount) that did not run the program: safe to retry. */
export class TransientError extends WardenError {
  constructor(message: string, cause?: unknown) {
    super("INTERNAL", message, { cause });
    this.name = "TransientError";
  }
}

export interface AdmissionDecision {
  allowed: boolean;
  /** Why not: `shutting_down`, `queue_full`, `user_queue_full`; or why it would wait. */
  reason: string | null;
}

export class Scheduler {
  private readonly queue = new FairQueue<Execution>();
  private readonly running = new Map<string, Execution>();
  private readonly live = new Map<string, Execution>();
  private readonly runningPerUser = new Map<string, number>();
  private readonly memory: MemoryBudget;
  private draining = false;
  private readonly listeners: ((event: LifecycleEvent) => void)[] = [];
  private queueTimer: NodeJS.Timeout | undefined;
  /** Moving average of run durations, for Retry-After estimates. */
  private averageRunMs = 1000;

  constructor(private readonly o: SchedulerOptions) {
    this.memory = new MemoryBudget({
      budgetMb: o.memoryBudgetMb,
      mode: o.memory?.mode ?? "reserve",
      admissionMb: o.memory?.admissionMb ?? 0,
      pollMs: o.memory?.pollMs ?? 1000,
      readUsageMb: o.memory?.readUsageMb ?? (() => Promise.resolve(0)),
      onRoom: () => this.pump(),
      onReadError: o.memory?.onReadError,
    });
  }

  onEvent(listener: (event: LifecycleEvent) => void): void {
    this.listeners.push(listener);
  }

  private emit(event: LifecycleEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  get activeCount(): number {
    return this.running.size;
  }

  get queuedCount(): number {
    return this.queue.size;
  }

  /** What the memory budget counts as taken (reservations, or measured use plus admissions). */
  get memoryReservedMb(): number {
    return this.memory.committedMb;
  }

  /** The kernel's last measure of all sandboxes' memory (`usage` mode; else 0). */
  get memoryMeasuredMb(): number {
    return this.memory.measuredMb;
  }

  activeOf(userId: string): number {
    return this.runningPerUser.get(userId) ?? 0;
  }

  queuedOf(userId: string): number {
    return this.queue.sizeOf(userId);
  }

  /** Users with something running or waiting. */
  users(): string[] {
    return [...new Set([...this.runningPerUser.keys(), ...this.queue.users()])];
  }

  get(id: string): Execution | undefined {
    return this.live.get(id);
  }

  /** Seconds a refused client should wait before trying again. */
  retryAfterSeconds(): number {
    return Math.min(60, Math.max(1, Math.ceil(this.averageRunMs / 1000)));
  }

  /** Would a new execution of this user be accepted (run now or queue)? */
  canStart(userId: string): AdmissionDecision {
    if (this.draining) return { allowed: false, reason: "shutting_down" };
    if (this.queue.size >= this.o.maxQueueSize) return { allowed: false, reason: "queue_full" };
    if (this.queue.sizeOf(userId) >= this.o.maxQueuedPerUser)
      return { allowed: false, reason: "user_queue_full" };
    if (this.running.size >= this.o.maxConcurrent) return { allowed: true, reason: "global_limit" };
    if (this.activeOf(userId) >= this.o.maxPerUser) return { allowed: true, reason: "user_limit" };
    return { allowed: true, reason: null };
  }

  /** Queues an execution (it starts at once when there is room) or throws SANDBOX_BUSY. */
  submit(request: ExecutionRequest, id: string = executionId()): Execution {
    const decision = this.canStart(request.userId);
    if (!decision.allowed) {
      const message =
        decision.reason === "shutting_down"
          ? "Warden is shutting down"
          : decision.reason === "queue_full"
            ? `the queue is full (${this.o.maxQueueSize} waiting)`
            : `you already have ${this.o.maxQueuedPerUser} executions waiting`;
      const error = new WardenError("SANDBOX_BUSY", message, {
        details: { reason: decision.reason, retryAfterSeconds: this.retryAfterSeconds() },
      });
      this.emit({ type: "rejected", request, reason: decision.reason ?? "busy", error });
      throw error;
    }
    const reservation = this.o.reservationMb(request);
    if (reservation > this.o.memoryBudgetMb) {
      const error = new WardenError(
        "QUOTA_EXCEEDED",
        `limits.memoryMb: ${reservation} MiB exceeds what this host can hold (${this.o.memoryBudgetMb} MiB)`,
      );
      this.emit({ type: "rejected", request, reason: "memory_budget", error });
      throw error;
    }
    const execution = new Execution(id, request);
    this.live.set(id, execution);
    this.queue.push(execution);
    this.emit({ type: "queued", execution });
    this.armQueueTimer();
    this.pump();
    void execution.done.then(() => this.live.delete(id));
    return execution;
  }

  /**
   * Holds `mb` of the memory budget for something that is not an execution (a
   * live session) until the returned release is called. Refused when it does
   * not fit now: a session is never queued.
   */
  /** Whether `mb` more would fit in the memory budget now. */
  memoryFits(mb: number): boolean {
    return this.memory.fits(mb);
  }

  /** Holds `mb` of the budget unconditionally (the warm pool's boxes, already started). */
  holdMemory(mb: number): () => void {
    const release = this.memory.hold(mb);
    return () => {
      release();
      this.pump();
    };
  }

  reserveMemory(mb: number, what: string): () => void {
    if (!this.memory.fits(mb))
      throw new WardenError(
        "SANDBOX_BUSY",
        `${what}: ${mb} MiB does not fit in the host's memory budget now (${this.memory.committedMb} of ${this.o.memoryBudgetMb} MiB held)`,
        { details: { reason: "memory_budget", retryAfterSeconds: this.retryAfterSeconds() } },
      );
    const release = this.memory.hold(mb);
    return () => {
      release();
      this.pump();
    };
  }

  private fits(execution: Execution): boolean {
    return (
      this.running.size < this.o.maxConcurrent &&
      this.activeOf(execution.userId) < this.o.maxPerUser &&
      this.memory.fits(this.memory.costOf(this.o.reservationMb(execution.request)))
    );
  }

  /** Starts every queued execution that fits, fairly. */
  private pump(): void {
    if (this.draining) return;
    for (;;) {
      const next = this.queue.take(
        (e) => this.fits(e),
        (userId) => this.activeOf(userId),
      );
      if (!next) return;
      this.start(next);
    }
  }

  private start(execution: Execution): void {
    const releaseMemory = this.memory.takeForExecution(this.o.reservationMb(execution.request));
    this.running.set(execution.id, execution);
    this.runningPerUser.set(execution.userId, this.activeOf(execution.userId) + 1);
    execution.startedAt = Date.now();
    execution.setStatus("running");
    this.emit({ type: "started", execution });
    void this.runWithRetries(execution).then((result) => {
      this.running.delete(execution.id);
      const left = this.activeOf(execution.userId) - 1;
      if (left > 0) this.runningPerUser.set(execution.userId, left);
      else this.runningPerUser.delete(execution.userId);
      releaseMemory();
      this.averageRunMs =
        0.8 * this.averageRunMs + 0.2 * (Date.now() - (execution.startedAt ?? Date.now()));
      execution.finish(result);
      this.emit({ type: "finished", execution, result });
      this.pump();
    });
  }

  private async runWithRetries(execution: Execution): Promise<ExecutionResult> {
    const queueTimeMs = (execution.startedAt ?? Date.now()) - execution.createdAt;
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.o.run(execution, execution.abort.signal);
        result.metrics.queueTimeMs = queueTimeMs;
        result.metrics.retries = execution.retries;
        return result;
      } catch (error) {
        const retry =
          error instanceof TransientError &&
          execution.request.retryOnFailure &&
          attempt < this.o.maxRetries &&
          !execution.abort.signal.aborted;
        if (!retry) {
          const failed = this.failedResult(execution, error, queueTimeMs);
          return failed;
        }
        execution.retries++;
        this.emit({
          type: "retried",
          execution,
          attempt: attempt + 1,
          reason: (error as Error).message,
        });
        await sleep(this.o.retryBackoffMs * 2 ** attempt, undefined, {
          signal: execution.abort.signal,
        }).catch(() => undefined);
      }
    }
  }

  private failedResult(execution: Execution, error: unknown, queueTimeMs: number): ExecutionResult {
    const killed = execution.abort.signal.aborted;
    const status = killed
      ? "killed"
      : error instanceof WardenError && error.code !== "INTERNAL"
        ? "rejected"
        : "error";
    return blankResult(execution.id, status, killed ? null : toErrorInfo(error), {
      queueTimeMs,
      retries: execution.retries,
    });
  }

  /** Kills a queued or running execution. Returns false when there is no such live execution. */
  kill(id: string, reason: string): boolean {
    const execution = this.live.get(id);
    if (!execution || execution.result) return false;
    execution.killReason = reason;
    if (this.queue.remove(execution)) {
      execution.finishWithout("killed", null);
      this.emit({ type: "finished", execution, result: execution.result! });
      return true;
    }
    execution.abort.abort(new Error(reason));
    return true;
  }

  /** Drops queued executions that waited longer than the queue timeout. */
  private expireQueued(): void {
    const now = Date.now();
    for (const execution of [...this.queue]) {
      if (now - execution.createdAt < this.o.queueTimeoutMs) continue;
      this.queue.remove(execution);
      execution.finishWithout("rejected", {
        code: "SANDBOX_BUSY",
        message: `no sandbox became free within the queue timeout (${Math.round(this.o.queueTimeoutMs / 1000)} s)`,
        retryable: true,
      });
      this.emit({ type: "finished", execution, result: execution.result! });
    }
    if (this.queue.size === 0 && this.queueTimer) {
      clearInterval(this.queueTimer);
      this.queueTimer = undefined;
    }
  }

  private armQueueTimer(): void {
    if (this.queueTimer) return;
    const every = Math.max(50, Math.min(1000, this.o.queueTimeoutMs / 4));
    this.queueTimer = setInterval(() => this.expireQueued(), every);
    this.queueTimer.unref();
  }

  /**
   * Graceful drain: no new work; queued executions end `killed` (retryable);
   * running ones get until `deadlineMs` to finish, then are killed. Resolves
   * when every execution has a final state.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    for (const execution of [...this.queue]) {
      this.queue.remove(execution);
      execution.finishWithout("killed", {
        code: "SANDBOX_BUSY",
        message: "Warden shut down before this execution started",
        retryable: true,
      });
      this.emit({ type: "finished", execution, result: execution.result! });
    }
    const all = Promise.all([...this.running.values()].map((e) => e.done));
    const timer = setTimeout(() => {
      for (const execution of this.running.values()) this.kill(execution.id, "shutdown");
    }, deadlineMs);
    await all;
    clearTimeout(timer);
    if (this.queueTimer) clearInterval(this.queueTimer);
    this.memory.close();
  }
}
