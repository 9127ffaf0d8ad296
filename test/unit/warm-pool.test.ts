/**
 * The warm analyser pool's rules with fake analysers: who may use which
 * analyser, when one is recycled, and that a failing start cannot loop.
 */
import { describe, expect, it } from "vitest";
import { WarmAnalyserError, type WarmAnalyser } from "../../src/policy/warm-analyser.js";
import { WarmAnalyserPool, type RestartReason } from "../../src/policy/warm-pool.js";

interface Fake {
  id: number;
  requests: number;
  startedAt: number;
  busy: boolean;
  broken: string | null;
  result: null;
  closed: boolean;
  fail: string | null;
  end: () => void;
}

function pool(
  o: { size?: number; maxRequests?: number; maxAgeMs?: number; startFails?: boolean } = {},
) {
  const made: Fake[] = [];
  const restarts: RestartReason[] = [];
  let starts = 0;
  const p = new WarmAnalyserPool({
    size: o.size ?? 1,
    requestTimeoutMs: 1000,
    maxRequests: o.maxRequests ?? 100,
    maxAgeMs: o.maxAgeMs ?? 60_000,
    onRestart: (r) => restarts.push(r),
    start: () => {
      starts++;
      if (o.startFails) return Promise.reject(new Error("no python"));
      let end!: () => void;
      const ended = new Promise<void>((resolve) => (end = resolve));
      const fake: Fake = {
        id: made.length,
        requests: 0,
        startedAt: Date.now(),
        busy: false,
        broken: null,
        result: null,
        closed: false,
        fail: null,
        end,
      };
      Object.assign(fake, {
        ended,
        sandbox: { id: `box${fake.id}`, uid: fake.id },
        close: () => {
          fake.closed = true;
          end();
          return Promise.resolve();
        },
        analyse: () => {
          if (fake.fail) return Promise.reject(new WarmAnalyserError(fake.fail as "crash"));
          fake.requests++;
          return Promise.resolve({ findings: [], errors: [] });
        },
      });
      made.push(fake);
      return Promise.resolve(fake as unknown as WarmAnalyser);
    },
  });
  return { p, made, restarts, starts: () => starts };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const units = [{ cell: null, source: "x" }];

describe("WarmAnalyserPool", () => {
  it("answers null (go cold) until an analyser is up, then serves warm", async () => {
    const { p } = pool();
    expect(await p.analyse("u", units)).toBeNull();
    await tick();
    expect(await p.analyse("u", units)).toEqual({ output: { findings: [], errors: [] } });
    await p.close();
  });

  it("pins an analyser to its first user: another user goes cold, then gets a fresh one", async () => {
    const { p, made, restarts } = pool({ size: 1 });
    p.fill();
    await tick();
    expect(await p.analyse("a", units)).not.toBeNull();
    // b may not use a's analyser; a's was just used, so it is not retired yet.
    expect(await p.analyse("b", units)).toBeNull();
    expect(restarts).toEqual([]);
    // Once a's analyser has been idle a while, b's demand replaces it with a fresh one.
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await p.analyse("b", units)).toBeNull();
    expect(restarts).toEqual(["tenant"]);
    expect(made[0]!.closed).toBe(true);
    await tick();
    expect(await p.analyse("b", units)).not.toBeNull();
    expect(made[1]!.requests).toBe(1);
    await p.close();
  });

  it("recycles after maxRequests and after maxAgeMs", async () => {
    const { p, made, restarts } = pool({ maxRequests: 2 });
    p.fill();
    await tick();
    await p.analyse("u", units);
    await p.analyse("u", units);
    expect(restarts).toEqual(["max_requests"]);
    expect(made[0]!.closed).toBe(true);
    await tick();
    made[1]!.startedAt -= 120_000;
    expect(await p.analyse("u", units)).toBeNull();
    expect(restarts).toEqual(["max_requests", "max_age"]);
    await p.close();
  });

  it("replaces an analyser that failed, and reports the failure", async () => {
    const { p, made, restarts } = pool();
    p.fill();
    await tick();
    made[0]!.fail = "garbled";
    expect(await p.analyse("u", units)).toEqual({ failure: "garbled" });
    expect(restarts).toEqual(["garbled"]);
    await tick();
    expect(made).toHaveLength(2);
    await p.close();
  });

  it("does not loop on a start that fails: one try, then a pause", async () => {
    const { p, starts } = pool({ startFails: true, size: 2 });
    for (let i = 0; i < 50; i++) {
      expect(await p.analyse("u", units)).toBeNull();
      await tick();
    }
    expect(starts()).toBe(2);
    await p.close();
  });

  it("closes every analyser, and starts none afterwards", async () => {
    const { p, made, starts } = pool({ size: 2 });
    p.fill();
    await tick();
    await p.close();
    expect(made.every((f) => f.closed)).toBe(true);
    expect(await p.analyse("u", units)).toBeNull();
    p.fill();
    expect(starts()).toBe(2);
    expect(p.sandboxes()).toEqual([]);
  });
});
