/**
 * What live sessions use, recorded into the hourly usage rows: each
 * session's cgroup is sampled every `sampleMs` (memory in use, integrated
 * into MB-seconds; CPU as the cgroup's running total), egress is counted per
 * connection as the proxy reports it, and what accrued is written every
 * `flushMs` and once more when the session ends — so a session that lives
 * for days still shows in the hours it used, not all in its last one.
 */
import type { Logger } from "../audit/logger.js";
import { emptyUsage, MiB, type ExecutionUsage } from "../contract/usage.js";
import type { UsageStore } from "../store/store.js";

export interface TrackedSandbox {
  usage(): Promise<{ memoryBytes: number; cpuTimeMs: number }>;
}

interface Tracked {
  id: string;
  userId: string;
  keyId: string | null;
  sandbox: TrackedSandbox;
  /** Accrued since the last flush. */
  acc: ExecutionUsage;
  sessionMs: number;
  counted: boolean;
  lastAt: number;
  lastMemory: number;
  lastCpuMs: number;
  /** Whether the cgroup has been read once (before that, `lastMemory` is unknown, not 0). */
  read: boolean;
  /** The reading under way, if any: the last one at the end waits for it. */
  reading: Promise<void> | null;
}

export interface SessionUsageOptions {
  usage: UsageStore;
  logger: Logger;
  sampleMs: number;
  flushMs: number;
  now?: () => number;
}

export class SessionUsage {
  private readonly live = new Map<string, Tracked>();
  private readonly sampler: NodeJS.Timeout;
  private readonly flusher: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly o: SessionUsageOptions) {
    this.now = o.now ?? Date.now;
    this.sampler = setInterval(() => void this.sampleAll(), o.sampleMs);
    this.flusher = setInterval(() => void this.flushAll(), o.flushMs);
    this.sampler.unref();
    this.flusher.unref();
  }

  started(s: { id: string; userId: string; keyId: string | null; sandbox: TrackedSandbox }): void {
    this.live.set(s.id, {
      ...s,
      acc: emptyUsage(),
      sessionMs: 0,
      counted: false,
      lastAt: this.now(),
      lastMemory: 0,
      lastCpuMs: 0,
      read: false,
      reading: null,
    });
  }

  /** Bytes through a session's egress proxy (one closed connection). */
  egress(sessionId: string, bytes: number, connections: number): void {
    const t = this.live.get(sessionId);
    if (!t) return;
    t.acc.egressBytes += bytes;
    t.acc.egressConnections += connections;
  }

  /** One reading of the session's cgroup; a reading already under way is not stacked. */
  private sample(t: Tracked): Promise<void> {
    t.reading ??= this.read(t).finally(() => (t.reading = null));
    return t.reading;
  }

  private async read(t: Tracked): Promise<void> {
    const reading = await t.sandbox.usage().catch(() => null);
    const now = this.now();
    const ms = Math.max(0, now - t.lastAt);
    // Memory between two readings is taken as their mean; before the first one it is
    // unknown, so the first reading stands for the whole time since the start (a session
    // shorter than one sampling interval still counts its memory).
    const memory = reading?.memoryBytes ?? t.lastMemory;
    const held = t.read ? (t.lastMemory + memory) / 2 : memory;
    t.acc.memoryMbMs += (held / MiB) * ms;
    t.acc.wallMs += ms;
    t.sessionMs += ms;
    t.lastAt = now;
    if (reading) {
      t.read = true;
      // The cgroup's total only grows; a new sandbox (never here) would start from 0.
      t.acc.cpuMs += Math.max(0, reading.cpuTimeMs - t.lastCpuMs);
      t.lastCpuMs = Math.max(t.lastCpuMs, reading.cpuTimeMs);
      t.lastMemory = reading.memoryBytes;
      t.acc.peakMemoryBytes = Math.max(t.acc.peakMemoryBytes, reading.memoryBytes);
    }
  }

  private async sampleAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((t) => this.sample(t)));
  }

  private async flush(t: Tracked): Promise<void> {
    const acc = t.acc;
    const sessionMs = t.sessionMs;
    const sessions = t.counted ? 0 : 1;
    t.acc = emptyUsage();
    t.sessionMs = 0;
    t.counted = true;
    await this.o.usage
      .add({
        userId: t.userId,
        keyId: t.keyId,
        at: this.now(),
        executions: 0,
        sessions,
        sessionMs,
        usage: acc,
      })
      .catch((error: unknown) =>
        this.o.logger.error({ err: error, sessionId: t.id }, "session usage not recorded"),
      );
  }

  private async flushAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((t) => this.flush(t)));
  }

  /** The session ended: a last reading, then everything it accrued is recorded. */
  async ended(id: string): Promise<void> {
    const t = this.live.get(id);
    if (!t) return;
    this.live.delete(id);
    await t.reading; // a periodic reading under way ends first, then the last one
    await this.sample(t);
    await this.flush(t);
  }

  /** Shutdown: every live session's usage so far is recorded. */
  async close(): Promise<void> {
    clearInterval(this.sampler);
    clearInterval(this.flusher);
    await Promise.all([...this.live.keys()].map((id) => this.ended(id)));
  }
}
