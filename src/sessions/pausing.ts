/**
 * Pausing a session: its whole cgroup is frozen by the kernel, so nothing in
 * it runs (no CPU) while its memory stays as it was (and stays counted in the
 * host's memory budget). Its TTL clock stops and its idle timeout does not
 * run; a paused session does not count in maxSessionsPerUser (it runs
 * nothing) but does in maxSessions and sessions.maxPausedPerUser. One paused
 * past sessions.pausedSnapshotAfter is snapshotted and released. See docs/pause.md.
 */
import type { Config } from "../config/schema.js";
import type { SnapshotInfo } from "../contract/snapshot.js";
import { WardenError } from "../errors.js";
import type { LiveSession } from "./session.js";
import type { SnapshotStore } from "./snapshots.js";
import type { SessionInfo } from "./types.js";

/** Released sessions remembered (their info names the snapshot), oldest forgotten first. */
const MAX_RELEASED = 1000;

/** What a paused session refuses calls with. */
export function pausedError(id: string): WardenError {
  return new WardenError(
    "SESSION_PAUSED",
    `session ${id} is paused: resume it first (POST /v1/sessions/${id}/resume)`,
    { details: { resume: `/v1/sessions/${id}/resume` } },
  );
}

/** One session's pause state; state changes run one at a time. */
export class PauseState {
  /** When it was paused (ms), or null while it runs. */
  pausedAt: number | null = null;
  /** TTL left when it was paused (ms). */
  remainingMs = 0;
  /** From the start of a freeze on: calls are refused before the kernel has finished it. */
  frozen = false;
  releasing = false;
  /** Thawed for as long as a snapshot of it is taken: it runs then, and counts as running. */
  thawed = false;
  private chain: Promise<unknown> = Promise.resolve();

  /** Whether its processes run now: counted in maxSessionsPerUser. */
  get running(): boolean {
    return this.pausedAt === null || this.thawed;
  }

  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const turn = this.chain.then(work);
    this.chain = turn.catch(() => undefined);
    return turn;
  }

  /** Throws SESSION_PAUSED unless calls may go in. */
  check(id: string): void {
    if (this.frozen || this.pausedAt !== null) throw pausedError(id);
  }
}

export interface PausingDeps {
  config: Config;
  snapshots: SnapshotStore | undefined;
  /** Every live session (for the per-user counts). */
  sessions(): Iterable<LiveSession>;
  destroy(s: LiveSession, reason: string): Promise<void>;
  audit(userId: string, event: string, message: string, data: Record<string, unknown>): void;
}

export class Pausing {
  private readonly released = new Map<string, SessionInfo>();

  constructor(private readonly d: PausingDeps) {}

  /** The latest a session may run to: maxSessionTimeout from creation (the sandbox's own wall limit). */
  private hardEnd(s: LiveSession): number {
    return Date.parse(s.info.createdAt) + this.d.config.maxSessionTimeout * 1000;
  }

  private count(userId: string, paused: boolean, except?: LiveSession): number {
    let n = 0;
    for (const s of this.d.sessions()) {
      if (s === except || s.info.userId !== userId) continue;
      if (paused ? s.pause.pausedAt !== null : s.pause.running) n++;
    }
    return n;
  }

  /** The state fields of a session's info. */
  view(s: LiveSession): Pick<SessionInfo, "state" | "pausedAt" | "snapshotId" | "expiresAt"> {
    const { pausedAt } = s.pause;
    const expiresAt =
      pausedAt === null ? s.expiresAt : Math.min(Date.now() + s.pause.remainingMs, this.hardEnd(s));
    return {
      state: pausedAt === null ? "running" : "paused",
      pausedAt: pausedAt === null ? null : new Date(pausedAt).toISOString(),
      snapshotId: null,
      expiresAt: new Date(expiresAt).toISOString(),
    };
  }

  /** A released session's info, if the caller may see it. */
  releasedInfo(id: string, userId: string, admin: boolean): SessionInfo | undefined {
    const info = this.released.get(id);
    return info && (admin || info.userId === userId) ? info : undefined;
  }

  /** NOT_FOUND, saying where the workspace went if the session was released. */
  notFound(id: string, userId: string, admin: boolean): WardenError {
    const released = this.releasedInfo(id, userId, admin);
    if (!released) return new WardenError("NOT_FOUND", `session ${id} not found`);
    const snap = released.snapshotId;
    return new WardenError(
      "NOT_FOUND",
      `session ${id} was released after its pause ran out; ${snap ? `its workspace is snapshot ${snap} (POST /v1/sessions {"snapshot": "${snap}"})` : "no snapshot of it could be kept"}`,
      { details: { snapshotId: snap } },
    );
  }

  forget(id: string): void {
    this.released.delete(id);
  }

  async pause(s: LiveSession): Promise<void> {
    await s.pause.exclusive(async () => {
      if (s.pause.pausedAt !== null) return;
      const max = this.d.config.sessions.maxPausedPerUser;
      const paused = this.count(s.info.userId, true);
      if (paused >= max)
        throw new WardenError(
          "QUOTA_EXCEEDED",
          `pause: you already hold ${paused} paused sessions (sessions.maxPausedPerUser ${max})`,
        );
      // A call in flight would stop mid-way and fail at its deadline: pause between calls.
      if (s.sandbox.inFlight > 0)
        throw new WardenError(
          "SANDBOX_BUSY",
          `pause: session ${s.info.id} has ${s.sandbox.inFlight} call(s) running; pause it when they end`,
          { details: { retryAfterSeconds: 1 } },
        );
      s.pause.frozen = true;
      try {
        await s.sandbox.freeze();
      } catch (error) {
        s.pause.frozen = false;
        throw error;
      }
      const now = Date.now();
      s.pause.pausedAt = now;
      s.pause.remainingMs = Math.max(0, s.expiresAt - now);
      this.d.audit(s.info.userId, "session_paused", `session ${s.info.id} paused`, {
        sessionId: s.info.id,
      });
    });
  }

  async resume(s: LiveSession): Promise<void> {
    await s.pause.exclusive(async () => {
      if (s.pause.pausedAt === null || s.pause.releasing) return;
      const max = this.d.config.maxSessionsPerUser;
      const running = this.count(s.info.userId, false);
      if (running >= max)
        throw new WardenError(
          "QUOTA_EXCEEDED",
          `resume: you already hold ${running} running sessions (maxSessionsPerUser ${max})`,
        );
      await s.sandbox.thaw();
      const now = Date.now();
      // The TTL left when paused, never past the session's longest life.
      s.expiresAt = Math.min(now + s.pause.remainingMs, this.hardEnd(s));
      s.lastUsedAt = now;
      s.pause.pausedAt = null;
      s.pause.frozen = false;
      this.d.audit(s.info.userId, "session_resumed", `session ${s.info.id} resumed`, {
        sessionId: s.info.id,
      });
    });
  }

  /** A snapshot of the workspace; a paused session runs again for as long as it takes. */
  async snapshot(s: LiveSession, reason: SnapshotInfo["reason"] = "requested") {
    const store = this.d.snapshots;
    if (!store)
      throw new WardenError("INVALID_REQUEST", "snapshots: this Warden keeps none (no data dir)");
    return s.pause.exclusive(async () => {
      const paused = s.pause.pausedAt !== null;
      if (paused) {
        s.pause.thawed = true;
        await s.sandbox.thaw();
      }
      try {
        return await store.take(s.sandbox, {
          userId: s.info.userId,
          sessionId: s.info.id,
          language: s.info.language,
          environment: s.info.environment ?? "default",
          reason,
        });
      } finally {
        if (paused && !s.sandbox.result) await s.sandbox.freeze();
        s.pause.thawed = false;
      }
    });
  }

  /** Paused sessions past their time: snapshotted (where possible) and released. */
  sweep(now: number): void {
    const after = this.d.config.sessions.pausedSnapshotAfter * 1000;
    for (const s of [...this.d.sessions()]) {
      const at = s.pause.pausedAt;
      if (at === null || s.pause.releasing) continue;
      // Released before the sandbox's wall limit would end it unsaved.
      if (now - at >= after || now >= this.hardEnd(s) - 30_000) void this.release(s);
    }
  }

  private async release(s: LiveSession): Promise<void> {
    s.pause.releasing = true;
    const { id, userId } = s.info;
    let snapshotId: string | null = null;
    let why = "";
    try {
      snapshotId = (await this.snapshot(s, "paused")).id;
    } catch (error) {
      // Released all the same (the point is to free what it holds); the audit says what was lost.
      why = `: no snapshot (${error instanceof WardenError ? error.message : "failed"})`;
    }
    const info: SessionInfo = {
      ...s.info,
      ...this.view(s),
      status: "ended",
      state: "released",
      snapshotId,
    };
    this.released.set(id, info);
    if (this.released.size > MAX_RELEASED) this.released.delete(this.released.keys().next().value!);
    await this.d
      .destroy(s, `released after a pause of ${this.d.config.sessions.pausedSnapshotAfter} s${why}`)
      .catch(() => undefined);
    this.d.audit(userId, "session_released", `session ${id} released${why}`, {
      sessionId: id,
      snapshotId,
    });
  }
}
