import { describe, expect, it } from "vitest";
import { SlidingWindowLimiter } from "../../src/policy/rate-limit.js";

describe("sliding-window rate limits", () => {
  it("enforces every window and says which one refused", () => {
    let now = 0;
    const limiter = new SlidingWindowLimiter(
      [
        { name: "burst", windowMs: 1000, limit: 3 },
        { name: "minute", windowMs: 60_000, limit: 5 },
      ],
      () => now,
    );
    expect([1, 2, 3].map(() => limiter.hit("k").allowed)).toEqual([true, true, true]);
    const refused = limiter.hit("k");
    expect(refused).toMatchObject({ allowed: false, window: "burst", remaining: 0 });
    expect(limiter.hit("other").allowed).toBe(true);
    now = 2500; // burst window has slid past
    expect(limiter.hit("k").allowed).toBe(true);
    expect(limiter.hit("k").allowed).toBe(true);
    const minute = limiter.hit("k");
    expect(minute).toMatchObject({ allowed: false, window: "minute" });
    expect(minute.resetSeconds).toBeGreaterThan(50);
  });

  it("slides: the previous window still counts while it overlaps", () => {
    let now = 0;
    const limiter = new SlidingWindowLimiter(
      [{ name: "minute", windowMs: 60_000, limit: 10 }],
      () => now,
    );
    for (let i = 0; i < 10; i++) limiter.hit("k");
    now = 61_000; // 1/60 into the next window: ~98% of the previous one still counts
    expect(limiter.hit("k").allowed).toBe(false);
    now = 90_000; // half way: 5 of the previous 10 count
    expect([1, 2, 3, 4, 5, 6].map(() => limiter.hit("k").allowed)).toEqual([
      true,
      true,
      true,
      true,
      true,
      false,
    ]);
  });

  it("refused requests are not counted", () => {
    let now = 0;
    const limiter = new SlidingWindowLimiter([{ name: "s", windowMs: 1000, limit: 1 }], () => now);
    limiter.hit("k");
    for (let i = 0; i < 100; i++) limiter.hit("k");
    now = 2000;
    expect(limiter.hit("k").allowed).toBe(true);
  });
});
