/**
 * A session's usage is sampled from its cgroup while it lives and read once
 * more when it ends. A session shorter than one sampling interval, or one that
 * ends while a periodic reading is still under way, must still count its
 * memory and CPU (a CI run once recorded 0 for such a session).
 */
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { MiB } from "../../src/contract/usage.js";
import type { UsageDelta } from "../../src/store/usage.js";
import type { UsageStore } from "../../src/store/store.js";
import { SessionUsage } from "../../src/usage/session-usage.js";

function recorder(): { store: UsageStore; added: UsageDelta[] } {
  const added: UsageDelta[] = [];
  const store = {
    add: async (d: UsageDelta) => void added.push(d),
  } as unknown as UsageStore;
  return { store, added };
}

describe("session usage", () => {
  it("counts a session shorter than one sampling interval from its last reading", async () => {
    let now = 1_000;
    const { store, added } = recorder();
    const usage = new SessionUsage({
      usage: store,
      logger: silentLogger,
      sampleMs: 60_000,
      flushMs: 600_000,
      now: () => now,
    });
    usage.started({
      id: "ses_a",
      userId: "u",
      keyId: null,
      sandbox: { usage: async () => ({ memoryBytes: 10 * MiB, cpuTimeMs: 30 }) },
    });
    now += 500;
    await usage.ended("ses_a");
    await usage.close();
    expect(added).toHaveLength(1);
    expect(added[0]!.sessions).toBe(1);
    expect(added[0]!.sessionMs).toBe(500);
    expect(added[0]!.usage.cpuMs).toBe(30);
    expect(added[0]!.usage.memoryMbMs).toBe(10 * 500);
  });

  it("takes its last reading after a periodic one still under way", async () => {
    let now = 1_000;
    const { store, added } = recorder();
    let release!: () => void;
    let calls = 0;
    const usage = new SessionUsage({
      usage: store,
      logger: silentLogger,
      sampleMs: 5,
      flushMs: 600_000,
      now: () => now,
    });
    usage.started({
      id: "ses_b",
      userId: "u",
      keyId: null,
      sandbox: {
        usage: async () => {
          calls++;
          // The first (periodic) reading hangs until the session ends.
          if (calls === 1) await new Promise<void>((r) => (release = r));
          return { memoryBytes: 4 * MiB, cpuTimeMs: 10 * calls };
        },
      },
    });
    await new Promise((r) => setTimeout(r, 30)); // the sampler has started a reading
    expect(calls).toBe(1);
    now += 1_000;
    const ended = usage.ended("ses_b");
    release();
    await ended;
    await usage.close();
    expect(calls).toBe(2);
    expect(added).toHaveLength(1);
    expect(added[0]!.usage.cpuMs).toBe(20);
    expect(added[0]!.usage.memoryMbMs).toBeGreaterThan(0);
  });
});
