/**
 * Sliding-window rate limits: several windows at once (burst, per minute,
 * per hour) per key. Each window is a sliding-window counter — the current
 * fixed window plus the previous one weighted by how much of it still
 * overlaps — which is exact enough for abuse control and costs two numbers
 * per key and window.
 */

export interface WindowLimit {
  name: string;
  windowMs: number;
  limit: number;
}

export interface RateDecision {
  allowed: boolean;
  /** The tightest window (fewest requests left), for RateLimit-* headers. */
  limit: number;
  remaining: number;
  /** Seconds until that window has room again. */
  resetSeconds: number;
  /** Which window refused, when one did. */
  window: string | null;
}

interface Counter {
  start: number;
  current: number;
  previous: number;
}

export class SlidingWindowLimiter {
  private readonly counters = new Map<string, Counter[]>();
  private sweeps = 0;

  constructor(
    private readonly windows: readonly WindowLimit[],
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one request for `key` unless a window is full. */
  hit(key: string): RateDecision {
    const now = this.now();
    let counters = this.counters.get(key);
    if (!counters) {
      counters = this.windows.map(() => ({ start: now, current: 0, previous: 0 }));
      this.counters.set(key, counters);
    }
    let tightest: RateDecision | undefined;
    for (const [i, w] of this.windows.entries()) {
      const c = counters[i]!;
      const elapsedWindows = Math.floor((now - c.start) / w.windowMs);
      if (elapsedWindows >= 1) {
        c.previous = elapsedWindows === 1 ? c.current : 0;
        c.current = 0;
        c.start += elapsedWindows * w.windowMs;
      }
      const overlap = 1 - (now - c.start) / w.windowMs;
      const estimated = c.previous * overlap + c.current;
      const remaining = Math.max(0, Math.floor(w.limit - estimated - 1));
      const resetSeconds = Math.max(1, Math.ceil((c.start + w.windowMs - now) / 1000));
      const decision: RateDecision = {
        allowed: estimated + 1 <= w.limit,
        limit: w.limit,
        remaining,
        resetSeconds,
        window: null,
      };
      if (!decision.allowed) decision.window = w.name;
      if (
        !tightest ||
        (!decision.allowed && tightest.allowed) ||
        (decision.allowed === tightest.allowed && remaining < tightest.remaining)
      )
        tightest = decision;
    }
    if (tightest?.allowed !== false) for (const c of counters) c.current++;
    if (++this.sweeps % 10_000 === 0) this.sweep(now);
    return tightest ?? { allowed: true, limit: 0, remaining: 0, resetSeconds: 0, window: null };
  }

  /** Forgets keys idle for longer than the longest window. */
  private sweep(now: number): void {
    const longest = Math.max(...this.windows.map((w) => w.windowMs));
    for (const [key, counters] of this.counters)
      if (counters.every((c) => now - c.start > 2 * longest)) this.counters.delete(key);
  }
}

/** What a throttle reports when a window closed with events it held back. */
export interface Suppressed {
  key: string;
  count: number;
  windowMs: number;
}

/**
 * Lets the first `perWindow` events per key through in each fixed window and
 * only counts the rest, so a flood of refusals costs a counter, not a log
 * line and an audit row each. `flush()` (called on a timer and on close)
 * hands back what was held back, for one summary per key. Keys are bounded:
 * past `maxKeys` distinct ones, new keys share one overflow bucket, so many
 * source addresses cannot grow the map either.
 */
export class EventThrottle {
  private readonly counts = new Map<string, { seen: number; windowStart: number }>();
  static readonly OVERFLOW = "(other clients)";

  constructor(
    private readonly perWindow: number,
    private readonly windowMs: number,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one event for `key`; true when it should be written out in full. */
  admit(key: string): boolean {
    const now = this.now();
    let entry = this.counts.get(key);
    if (!entry) {
      if (this.counts.size >= this.maxKeys && key !== EventThrottle.OVERFLOW)
        return this.admit(EventThrottle.OVERFLOW);
      entry = { seen: 0, windowStart: now };
      this.counts.set(key, entry);
    }
    return ++entry.seen <= this.perWindow;
  }

  /** Ends every window older than windowMs; returns the keys that had events held back. */
  flush(all = false): Suppressed[] {
    const now = this.now();
    const out: Suppressed[] = [];
    for (const [key, entry] of this.counts) {
      if (!all && now - entry.windowStart < this.windowMs) continue;
      if (entry.seen > this.perWindow)
        out.push({ key, count: entry.seen - this.perWindow, windowMs: now - entry.windowStart });
      this.counts.delete(key);
    }
    return out;
  }
}
