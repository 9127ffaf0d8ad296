/**
 * Rate limits across API nodes: two limiter instances (two nodes) on one
 * Redis share one budget, decide atomically under concurrency, and each falls
 * back to its own in-process limit while Redis is unreachable.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../../src/audit/logger.js";
import { RedisSlidingWindowLimiter } from "../../src/cluster/rate-limit-redis.js";
import { SlidingWindowLimiter, type WindowLimit } from "../../src/policy/rate-limit.js";

const REDIS_URL = process.env.WARDEN_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `warden_t_${randomBytes(6).toString("hex")}:`;
const windows: WindowLimit[] = [
  { name: "burst", windowMs: 60_000, limit: 10 },
  { name: "hour", windowMs: 3_600_000, limit: 1000 },
];
// Mid-window, so no boundary passes during the test.
const NOW = 1_800_000_030_000;

function quietLogger(lines: string[]): Logger {
  const log = (_o: unknown, msg?: string) => void lines.push(String(msg));
  return { warn: log, info: log, error: log, debug: log } as unknown as Logger;
}

let redisA: Redis;
let redisB: Redis;

beforeAll(async () => {
  redisA = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  redisB = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  await Promise.all([redisA.ping(), redisB.ping()]);
});
afterAll(async () => {
  const keys = await redisA.keys(`${prefix}*`);
  if (keys.length > 0) await redisA.del(...keys);
  redisA.disconnect();
  redisB.disconnect();
});

describe("Redis rate limiter", () => {
  it("shares one budget between two API nodes", async () => {
    const a = new RedisSlidingWindowLimiter(
      redisA,
      windows,
      "perKey",
      quietLogger([]),
      prefix,
      () => NOW,
    );
    const b = new RedisSlidingWindowLimiter(
      redisB,
      windows,
      "perKey",
      quietLogger([]),
      prefix,
      () => NOW,
    );
    for (let i = 0; i < 6; i++) expect((await a.hit("key_1")).allowed).toBe(true);
    const fromB = [];
    for (let i = 0; i < 6; i++) fromB.push(await b.hit("key_1"));
    expect(fromB.map((d) => d.allowed)).toEqual([true, true, true, true, false, false]);
    expect(fromB[4]).toMatchObject({ window: "burst", limit: 10, remaining: 0 });
    // Another key has its own budget.
    expect((await b.hit("key_2")).allowed).toBe(true);
  });

  it("decides like the in-process limiter (its windows are aligned, so resets differ)", async () => {
    const redis = new RedisSlidingWindowLimiter(
      redisA,
      windows,
      "same",
      quietLogger([]),
      prefix,
      () => NOW,
    );
    const local = new SlidingWindowLimiter(windows, () => NOW);
    for (let i = 0; i < 12; i++) {
      const { resetSeconds, ...shared } = await redis.hit("k");
      const { resetSeconds: _local, ...expected } = local.hit("k");
      expect(shared).toEqual(expected);
      expect(resetSeconds).toBe(30);
    }
  });

  it("never lets more through than the limit when hit at once from both nodes", async () => {
    const a = new RedisSlidingWindowLimiter(
      redisA,
      windows,
      "race",
      quietLogger([]),
      prefix,
      () => NOW,
    );
    const b = new RedisSlidingWindowLimiter(
      redisB,
      windows,
      "race",
      quietLogger([]),
      prefix,
      () => NOW,
    );
    const all = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).hit("hot")));
    expect(all.filter((d) => d.allowed)).toHaveLength(10);
  });

  it("falls back to a per-node limit when Redis is down, and says so once", async () => {
    const dead = new Redis("redis://127.0.0.1:1", {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    dead.on("error", () => undefined);
    const lines: string[] = [];
    const limiter = new RedisSlidingWindowLimiter(
      dead,
      windows,
      "down",
      quietLogger(lines),
      prefix,
      () => NOW,
    );
    const decisions = [];
    for (let i = 0; i < 12; i++) decisions.push(await limiter.hit("k"));
    // Not fail-open: the node's own limit still holds.
    expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
    expect(decisions[11]).toMatchObject({ allowed: false, window: "burst" });
    expect(lines.filter((l) => /Redis unavailable/.test(l))).toHaveLength(1);
    dead.disconnect();
  });
});
