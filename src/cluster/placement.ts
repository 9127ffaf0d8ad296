/**
 * Where a new session (or notebook run, or MCP call without a sandbox) goes:
 * the active worker with a fresh heartbeat and the most free room, after the
 * user's cluster-wide count is checked. A worker only sees its own sessions,
 * so the per-user limits across the cluster are checked here, against the
 * registry in PostgreSQL, before the create is forwarded.
 *
 * The check and the worker's registration are two steps: creates racing on
 * several API nodes can pass together and overshoot a user's limit by the
 * creates in flight (each worker still holds its own per-user limit).
 */
import { WardenError } from "../errors.js";
import type { WorkerDirectory, WorkerRow } from "./worker-directory.js";

export interface PlacementLimits {
  /** Running executions plus live sessions, per user, across the cluster. */
  maxSandboxesPerUser: number;
  /** Live sessions per user, across the cluster. */
  maxSessionsPerUser: number;
}

/** Share of a worker's room in use: running and sessions over what it may run at once. */
export function load(w: WorkerRow): number {
  return (w.running + w.sessions) / Math.max(1, w.maxConcurrent);
}

/** The least loaded worker (ties: the one with more memory left, then by id, so it is stable). */
export function leastLoaded(workers: readonly WorkerRow[]): WorkerRow | null {
  let best: WorkerRow | null = null;
  for (const w of workers) {
    if (!best) {
      best = w;
      continue;
    }
    const [a, b] = [load(w), load(best)];
    const memory =
      w.memoryBudgetMb - w.memoryReservedMb - (best.memoryBudgetMb - best.memoryReservedMb);
    if (a < b || (a === b && (memory > 0 || (memory === 0 && w.id < best.id)))) best = w;
  }
  return best;
}

export class Placement {
  constructor(
    private readonly workers: WorkerDirectory,
    private readonly limits: PlacementLimits,
    private readonly liveSessionsOf: (userId: string) => Promise<number>,
  ) {}

  /** A worker for any call that needs one but no particular one. */
  async any(): Promise<WorkerRow> {
    const worker = leastLoaded(await this.workers.active());
    if (!worker)
      throw new WardenError("SANDBOX_BUSY", "cluster: no active worker is answering heartbeats", {
        details: { reason: "no_worker", retryAfterSeconds: 5 },
      });
    return worker;
  }

  /** A worker for a new sandbox of `userId`, once the user's cluster-wide counts allow one. */
  async forNewSandbox(userId: string): Promise<WorkerRow> {
    const [sessions, sandboxes] = await Promise.all([
      this.liveSessionsOf(userId),
      this.workers.sandboxesOf(userId),
    ]);
    if (sessions >= this.limits.maxSessionsPerUser)
      throw new WardenError(
        "QUOTA_EXCEEDED",
        `sessions: you already hold ${sessions} across the cluster (maxSessionsPerUser ${this.limits.maxSessionsPerUser})`,
      );
    if (sandboxes >= this.limits.maxSandboxesPerUser)
      throw new WardenError(
        "QUOTA_EXCEEDED",
        `sandboxes: you already have ${sandboxes} running executions and sessions across the cluster (maxSandboxesPerUser ${this.limits.maxSandboxesPerUser})`,
      );
    return this.any();
  }
}
