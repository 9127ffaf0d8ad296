/**
 * Quota periods with an injected clock: a used-up daily quota lifts at the
 * next UTC midnight, a monthly one at the first of the next month; a key's
 * quota does not touch the same user's other keys.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emptyUsage } from "../../src/contract/usage.js";
import { SqliteStore } from "../../src/store/sqlite/store.js";
import { periodReset, periodStart } from "../../src/usage/periods.js";
import { QuotaEnforcer } from "../../src/usage/quotas.js";

let dir: string;
let store: SqliteStore;
let now = Date.UTC(2030, 4, 31, 23, 59, 0); // 31 May, a minute before midnight
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "warden-quota-"));
  store = new SqliteStore(dir);
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const enforcer = () =>
  new QuotaEnforcer({ quotas: store.quotas, usage: store.usage, cacheMs: 0, now: () => now });

function used(userId: string, keyId: string | null, cpuMs: number, executions = 1) {
  return store.usage.add({
    userId,
    keyId,
    at: now,
    executions,
    sessions: 0,
    sessionMs: 0,
    usage: { ...emptyUsage(), cpuMs },
  });
}

describe("quota periods", () => {
  it("computes UTC day and month boundaries", () => {
    expect(periodStart("day", now)).toBe(Date.UTC(2030, 4, 31));
    expect(periodReset("day", now)).toBe(Date.UTC(2030, 5, 1));
    expect(periodReset("month", now)).toBe(Date.UTC(2030, 5, 1));
    expect(periodReset("month", Date.UTC(2030, 11, 15))).toBe(Date.UTC(2031, 0, 1));
  });

  it("a daily quota stops the next execution and lifts at midnight UTC", async () => {
    await store.quotas.put({
      subjectType: "user",
      subjectId: "ann",
      metric: "executions",
      period: "day",
      limit: 2,
    });
    const q = enforcer();
    await used("ann", "key_a", 10, 2);
    await expect(q.admit({ userId: "ann", keyId: "key_a" }, "execution")).rejects.toMatchObject({
      code: "QUOTA_EXCEEDED",
      details: {
        metric: "executions",
        period: "day",
        limit: 2,
        used: 2,
        resetsAt: "2030-06-01T00:00:00.000Z",
        retryAfterSeconds: 60,
      },
    });
    now += 61_000; // 1 June, 00:00:01
    const release = await q.admit({ userId: "ann", keyId: "key_a" }, "execution");
    release();
  });

  it("a monthly CPU quota on one key lifts on the 1st; the user's other keys are not held", async () => {
    now = Date.UTC(2030, 6, 20);
    await store.quotas.put({
      subjectType: "key",
      subjectId: "key_b",
      metric: "cpuSeconds",
      period: "month",
      limit: 1.5,
    });
    const q = enforcer();
    await used("bo", "key_b", 1500);
    await expect(q.admit({ userId: "bo", keyId: "key_b" }, "execution")).rejects.toMatchObject({
      code: "QUOTA_EXCEEDED",
      details: { metric: "cpuSeconds", used: 1.5, resetsAt: "2030-08-01T00:00:00.000Z" },
    });
    (await q.admit({ userId: "bo", keyId: "key_other" }, "execution"))();
    // A session is held by a CPU quota too, but not by an executions one.
    await expect(q.admit({ userId: "bo", keyId: "key_b" }, "session")).rejects.toMatchObject({
      code: "QUOTA_EXCEEDED",
    });
    now = Date.UTC(2030, 7, 1);
    (await q.admit({ userId: "bo", keyId: "key_b" }, "execution"))();
  });

  it("counts admitted, unfinished executions: concurrent admissions never pass the limit", async () => {
    now = Date.UTC(2030, 8, 1, 12);
    await store.quotas.put({
      subjectType: "user",
      subjectId: "cat",
      metric: "executions",
      period: "day",
      limit: 3,
    });
    const q = new QuotaEnforcer({
      quotas: store.quotas,
      usage: store.usage,
      cacheMs: 60_000,
      now: () => now,
    });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, () => q.admit({ userId: "cat" }, "execution")),
    );
    const admitted = outcomes.filter((o) => o.status === "fulfilled");
    expect(admitted).toHaveLength(3);
    // One finishes: its row is written, then it is released; it still counts, now from the row.
    await used("cat", null, 5);
    (admitted[0] as PromiseFulfilledResult<() => void>).value();
    await expect(q.admit({ userId: "cat" }, "execution")).rejects.toMatchObject({
      code: "QUOTA_EXCEEDED",
      details: { used: 3 },
    });
  });
});
