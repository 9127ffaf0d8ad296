/**
 * A few warm Python analysers, kept started so an analysis costs a request
 * instead of a sandbox and an interpreter start. A request never waits for
 * one: with none free it returns null and the caller runs the cold path.
 * Refills happen after a request, off its critical path, and only on demand,
 * so an analyser that dies at start cannot loop.
 */
import type { Logger } from "../audit/logger.js";
import type { AnalyserOutput } from "./analyser-output.js";
import type { SourceUnit } from "./findings.js";
import { WarmAnalyserError, type WarmAnalyser, type WarmFailure } from "./warm-analyser.js";

/**
 * Why a live analyser is replaced: a failure, or recycling. Recycling after
 * `maxRequests` or `maxAgeMs`, and after any analysis that could not finish
 * (the sign of code crafted against the parser), bounds how long a parser bug
 * turned into control of the process could watch or skew later verdicts, and
 * how far CPython's heap can drift.
 */
export type RestartReason = WarmFailure | "max_requests" | "max_age" | "incomplete" | "tenant";

export interface WarmPoolOptions {
  /** Analysers kept started; 0 turns the pool off. */
  size: number;
  start: () => Promise<WarmAnalyser>;
  requestTimeoutMs: number;
  maxRequests: number;
  maxAgeMs: number;
  onRestart?: (reason: RestartReason) => void;
  logger?: Logger;
}

/** After a failed start or an unexpected exit, no new start before this. */
const RETRY_AFTER_MS = 2_000;
/**
 * An idle analyser that served another user is retired for a fresh one only
 * after this long, so two users taking turns do not restart it every request.
 */
const TENANT_IDLE_MS = 1_000;

interface Member {
  analyser: WarmAnalyser;
  /**
   * The user it serves: it serves no one else. Should hostile source ever take
   * over the parser, what it holds and answers stays within its own user.
   */
  userId: string | null;
  lastUsedAt: number;
}

/** An answer, the failure that broke the analyser, or null: no warm analyser free, go cold. */
export type WarmOutcome = { output: AnalyserOutput } | { failure: WarmFailure } | null;

export class WarmAnalyserPool {
  private readonly live = new Set<Member>();
  private readonly starting = new Set<Promise<void>>();
  private readonly retiring = new Set<Promise<void>>();
  private retryAt = 0;
  private closed = false;

  constructor(private readonly o: WarmPoolOptions) {}

  /** The live analysers' sandboxes (admin views, leak checks). */
  sandboxes(): { id: string; uid: number }[] {
    return [...this.live].map((m) => m.analyser.sandbox);
  }

  async analyse(userId: string, units: readonly SourceUnit[]): Promise<WarmOutcome> {
    const member = this.take(userId);
    if (!member) return null;
    try {
      const output = await member.analyser.analyse(units, this.o.requestTimeoutMs);
      if (output.errors.length > 0) this.retire(member, "incomplete");
      else if (member.analyser.requests >= this.o.maxRequests) this.retire(member, "max_requests");
      return { output };
    } catch (error) {
      const reason = error instanceof WarmAnalyserError ? error.reason : "crash";
      this.retire(member, reason);
      return { failure: reason };
    } finally {
      member.lastUsedAt = Date.now();
      this.fill();
    }
  }

  /** Starts analysers up to the pool's size (in the background). */
  fill(): void {
    while (
      !this.closed &&
      this.live.size + this.starting.size < this.o.size &&
      Date.now() >= this.retryAt
    ) {
      const started: Promise<void> = this.o.start().then(
        (analyser) => {
          this.starting.delete(started);
          if (this.closed) return void this.track(analyser.close());
          const member: Member = { analyser, userId: null, lastUsedAt: Date.now() };
          this.live.add(member);
          void analyser.ended.then(
            () => this.exited(member),
            () => this.exited(member),
          );
        },
        (error: unknown) => {
          this.starting.delete(started);
          this.retryAt = Date.now() + RETRY_AFTER_MS;
          this.o.logger?.warn({ err: error }, "warm analyser did not start; analyses run cold");
        },
      );
      this.starting.add(started);
    }
  }

  /** Stops every analyser and waits until their sandboxes are gone. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.starting]);
    for (const member of this.live) this.track(member.analyser.close());
    this.live.clear();
    await Promise.all([...this.retiring]);
  }

  /** A free analyser for this user (its own, else a fresh one it then owns), or null. */
  private take(userId: string): Member | null {
    if (this.closed || this.o.size < 1) return null;
    const now = Date.now();
    const free: Member[] = [];
    for (const member of this.live) {
      if (member.analyser.busy || member.analyser.broken) continue;
      if (now - member.analyser.startedAt >= this.o.maxAgeMs) this.retire(member, "max_age");
      else free.push(member);
    }
    const member =
      free.find((m) => m.userId === userId) ?? free.find((m) => m.userId === null) ?? null;
    if (member) {
      member.userId = userId;
      return member;
    }
    // Every free analyser belongs to another user: make room for a fresh one.
    if (this.live.size + this.starting.size >= this.o.size) {
      const idle = free
        .filter((m) => now - m.lastUsedAt >= TENANT_IDLE_MS)
        .sort((a, b) => a.lastUsedAt - b.lastUsedAt)[0];
      if (idle) this.retire(idle, "tenant");
    }
    this.fill();
    return null;
  }

  private retire(member: Member, reason: RestartReason): void {
    if (!this.live.delete(member)) return;
    this.o.onRestart?.(reason);
    this.track(member.analyser.close());
  }

  /** An exit nobody asked for (a crash, its lifetime over): counted; refilled on demand. */
  private exited(member: Member): void {
    if (!this.live.has(member) || this.closed) return;
    this.retryAt = Date.now() + RETRY_AFTER_MS;
    const outlived = member.analyser.result?.status === "timeout";
    this.retire(member, outlived ? "max_age" : (member.analyser.broken ?? "crash"));
  }

  private track(closing: Promise<void>): void {
    const tracked = closing.catch((error: unknown) =>
      this.o.logger?.warn({ err: error }, "warm analyser cleanup failed"),
    );
    this.retiring.add(tracked);
    void tracked.finally(() => this.retiring.delete(tracked));
  }
}
