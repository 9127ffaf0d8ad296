/**
 * The Gate's rate limits shared by every API node: the same sliding-window
 * counter as src/policy/rate-limit.ts (current window plus the previous one
 * weighted by its overlap), kept in Redis and decided in one Lua script, so
 * two nodes hitting the same key at once cannot both take the last slot.
 * Windows are aligned to multiples of their length (all nodes agree on them
 * without talking); counters expire after two windows.
 *
 * Redis down, slow or refusing: each node falls back to its own in-process
 * limiter with the same windows (logged once per outage). That is neither
 * fail-open (no limit at all would let a flood through exactly when the
 * cluster is degraded) nor fail-closed (a Redis outage would take the whole
 * API down): the budget becomes per node for the duration, so a client can
 * get at most N times its limit across N nodes.
 */
import type { Redis } from "ioredis";
import type { Logger } from "../audit/logger.js";
import { SlidingWindowLimiter, type RateDecision, type WindowLimit } from "../policy/rate-limit.js";

/** What the Gate needs of a limiter; the in-process one answers at once. */
export interface RateLimiter {
  hit(key: string): RateDecision | Promise<RateDecision>;
}

/** A Redis answer slower than this counts as Redis being down for this request. */
export const REDIS_TIMEOUT_MS = 250;

// KEYS: per window, the current and the previous counter. ARGV: now, then per
// window its length and limit. Returns 1/0 (allowed), then per window the
// estimate (in thousandths, Lua returns integers) and the window's start.
const SCRIPT = `
local now = tonumber(ARGV[1])
local n = #KEYS / 2
local out = {1}
local ok = true
for i = 1, n do
  local w = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  local start = math.floor(now / w) * w
  local cur = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local est = prev * (1 - (now - start) / w) + cur
  if est + 1 > limit then ok = false end
  out[#out + 1] = math.floor(est * 1000)
  out[#out + 1] = start
end
if ok then
  for i = 1, n do
    redis.call('INCR', KEYS[2 * i - 1])
    redis.call('PEXPIRE', KEYS[2 * i - 1], 2 * tonumber(ARGV[2 * i]))
  end
else
  out[1] = 0
end
return out
`;

type HitCommand = (numKeys: number, ...args: (string | number)[]) => Promise<number[]>;

/** The decision for one window, exactly as the in-process limiter makes it. */
function decide(w: WindowLimit, estimate: number, start: number, now: number): RateDecision {
  const allowed = estimate + 1 <= w.limit;
  return {
    allowed,
    limit: w.limit,
    remaining: Math.max(0, Math.floor(w.limit - estimate - 1)),
    resetSeconds: Math.max(1, Math.ceil((start + w.windowMs - now) / 1000)),
    window: allowed ? null : w.name,
  };
}

/** The tightest of the windows' decisions: a refusal first, then the fewest left. */
function tightest(decisions: RateDecision[]): RateDecision {
  let best: RateDecision | undefined;
  for (const d of decisions)
    if (
      !best ||
      (!d.allowed && best.allowed) ||
      (d.allowed === best.allowed && d.remaining < best.remaining)
    )
      best = d;
  return best ?? { allowed: true, limit: 0, remaining: 0, resetSeconds: 0, window: null };
}

export class RedisSlidingWindowLimiter implements RateLimiter {
  private readonly local: SlidingWindowLimiter;
  private readonly command: HitCommand;
  private down = false;

  /**
   * @param name which limiter (perIp, perKey...): part of every Redis key.
   * @param prefix of every key, so tests and deployments can share a Redis.
   */
  constructor(
    private readonly redis: Redis,
    private readonly windows: readonly WindowLimit[],
    private readonly name: string,
    private readonly logger: Logger,
    private readonly prefix = "warden:rl:",
    private readonly now: () => number = Date.now,
  ) {
    this.local = new SlidingWindowLimiter(windows, now);
    if (!("wardenRateHit" in redis)) redis.defineCommand("wardenRateHit", { lua: SCRIPT });
    const bound = (redis as unknown as { wardenRateHit: HitCommand }).wardenRateHit;
    this.command = bound.bind(redis);
  }

  async hit(key: string): Promise<RateDecision> {
    const now = this.now();
    const keys: string[] = [];
    const args: number[] = [now];
    for (const w of this.windows) {
      const index = Math.floor(now / w.windowMs);
      // One hash tag per client key: a Redis Cluster keeps its counters on one shard.
      const base = `${this.prefix}${this.name}:{${key}}:${w.name}`;
      keys.push(`${base}:${index}`, `${base}:${index - 1}`);
      args.push(w.windowMs, w.limit);
    }
    let answer: number[];
    try {
      // Not connected: no wait in ioredis's offline queue on every request.
      if (this.redis.status !== "ready") throw new Error(`Redis is ${this.redis.status}`);
      answer = await withTimeout(this.command(keys.length, ...keys, ...args), REDIS_TIMEOUT_MS);
    } catch (error) {
      if (!this.down) {
        this.down = true;
        this.logger.warn(
          { err: error, limiter: this.name },
          "rate limits: Redis unavailable, limiting per node until it answers",
        );
      }
      return this.local.hit(key);
    }
    if (this.down) {
      this.down = false;
      this.logger.info({ limiter: this.name }, "rate limits: Redis answers again, limits shared");
    }
    return tightest(
      this.windows.map((w, i) =>
        decide(w, Number(answer[1 + 2 * i]) / 1000, Number(answer[2 + 2 * i]), now),
      ),
    );
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** For the Gate: a limiter per name (perIp, perKey, anonymous) on one Redis. */
export function redisLimiters(
  redis: Redis,
  logger: Logger,
  prefix?: string,
): (windows: WindowLimit[], name: string) => RateLimiter {
  return (windows, name) => new RedisSlidingWindowLimiter(redis, windows, name, logger, prefix);
}
