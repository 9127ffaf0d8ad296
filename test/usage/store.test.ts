/**
 * Usage rows, quota rules and key updates in both stores (the contract-suite
 * style: one behaviour, SQLite and PostgreSQL): an execution's final write
 * counts once, hours sum into days and months, quotas upsert and filter, and
 * a rotated key's old token is refused at once on the node that rotated it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blankResult, type ExecutionResult } from "../../src/contract/result.js";
import type { Store } from "../../src/store/store.js";
import { BACKENDS, newRecord } from "../store/backends.js";

const DAY = 86_400_000;
const T0 = Date.UTC(2031, 0, 31, 22, 30); // 31 January, late: the next day is February

function used(id: string, cpuMs: number): ExecutionResult {
  const r = blankResult(id, "completed", null, { cpuTimeMs: cpuMs });
  r.success = true;
  r.metrics.usage = {
    cpuMs,
    memoryMbMs: 100,
    wallMs: 50,
    peakMemoryBytes: cpuMs * 1000,
    diskPeakBytes: 4096,
    egressBytes: 10,
    egressConnections: 1,
    outputBytes: 3,
  };
  return r;
}

describe.each(BACKENDS)("usage store: $name", (backend) => {
  let store: Store;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    ({ store, dispose } = await backend.open());
  });
  afterAll(() => dispose());

  async function finish(userId: string, keyId: string | null, cpuMs: number, at: number) {
    const r = { ...newRecord(), userId, keyId, startedAt: at - 100 };
    await store.records.queued(r);
    await store.records.finished(r.id, used(r.id, cpuMs), at);
    return r.id;
  }

  it("counts an execution's final write once, into its hour, user and key", async () => {
    const id = await finish("alice", "key_a", 7, T0);
    // A second final write (a retried finish) is not counted again.
    await store.records.finished(id, used(id, 7), T0 + 1);
    await finish("alice", "key_a", 5, T0 + 60_000);
    await finish("alice", null, 11, T0 + 2 * 3_600_000); // 1 February, 00:30
    await finish("bob", "key_b", 13, T0);
    const rows = await store.usage.query({
      fromMs: T0 - DAY,
      toMs: T0 + DAY,
      granularity: "hour",
      groupBy: "none",
      userId: "alice",
      limit: 100,
    });
    expect(rows.map((r) => [r.period, r.executions, r.cpuMs])).toEqual([
      [Date.UTC(2031, 0, 31, 22), 2, 12],
      [Date.UTC(2031, 1, 1, 0), 1, 11],
    ]);
    expect(rows[0]).toMatchObject({ peakMemoryBytes: 7000, diskPeakBytes: 4096, egressBytes: 20 });
  });

  it("sums hours into days and months, grouped by user or key, within the limit", async () => {
    const q = { fromMs: T0 - 40 * DAY, toMs: T0 + 40 * DAY, limit: 100 };
    const months = await store.usage.query({ ...q, granularity: "month", groupBy: "user" });
    expect(months.map((r) => [new Date(r.period).toISOString(), r.userId, r.cpuMs])).toEqual([
      ["2031-01-01T00:00:00.000Z", "alice", 12],
      ["2031-01-01T00:00:00.000Z", "bob", 13],
      ["2031-02-01T00:00:00.000Z", "alice", 11],
    ]);
    const days = await store.usage.query({ ...q, granularity: "day", groupBy: "key" });
    expect(days.map((r) => [r.period, r.userId, r.keyId, r.executions])).toEqual([
      [Date.UTC(2031, 0, 31), "alice", "key_a", 2],
      [Date.UTC(2031, 0, 31), "bob", "key_b", 1],
      [Date.UTC(2031, 1, 1), "alice", null, 1],
    ]);
    const cut = await store.usage.query({ ...q, granularity: "hour", groupBy: "key", limit: 2 });
    expect(cut).toHaveLength(2);
  });

  it("adds session deltas and sums a subject's period for quotas", async () => {
    await store.usage.add({
      userId: "alice",
      keyId: "key_a",
      at: T0,
      executions: 0,
      sessions: 1,
      sessionMs: 90_000,
      usage: { ...used("x", 3).metrics.usage! },
    });
    const byUser = await store.usage.totals({ userId: "alice" }, Date.UTC(2031, 0, 31), T0 + 1);
    expect(byUser).toMatchObject({ executions: 2, sessions: 1, cpuMs: 15, sessionMs: 90_000 });
    const byKey = await store.usage.totals({ keyId: "key_b" }, Date.UTC(2031, 0, 1), T0 + DAY);
    expect(byKey).toMatchObject({ executions: 1, cpuMs: 13 });
    const none = await store.usage.totals({ userId: "nobody" }, 0, T0);
    expect(none.cpuMs).toBe(0);
  });

  it("upserts quota rules per subject, metric and period; lists, filters and removes them", async () => {
    const a = await store.quotas.put({
      subjectType: "user",
      subjectId: "alice",
      metric: "executions",
      period: "day",
      limit: 5,
    });
    const again = await store.quotas.put({ ...a, limit: 7 });
    expect(again.id).toBe(a.id);
    expect(again.limit).toBe(7);
    await store.quotas.put({
      subjectType: "key",
      subjectId: "key_b",
      metric: "cpuSeconds",
      period: "month",
      limit: 1.5,
    });
    expect(await store.quotas.list()).toHaveLength(2);
    expect(await store.quotas.list({ subjectType: "key" })).toMatchObject([{ limit: 1.5 }]);
    expect(await store.quotas.forActor("alice", "key_zzz")).toMatchObject([{ id: a.id }]);
    expect(await store.quotas.forActor("carol", "key_b")).toHaveLength(1);
    expect(await store.quotas.remove(a.id)).toBe(true);
    expect(await store.quotas.remove(a.id)).toBe(false);
  });

  it("expires usage rows older than the usage retention", async () => {
    const removed = await store.usage.expire(Date.now() - Date.UTC(2031, 1, 1) + 1);
    expect(removed).toBeGreaterThan(0);
  });

  it("updates a key's fields and rotates its token: the old token is refused at once", async () => {
    const { key, token } = await store.keys.create({
      name: "k",
      userId: "dave",
      scopes: ["execute"],
    });
    expect((await store.keys.authenticate(token))?.id).toBe(key.id); // cached on PG now
    const updated = await store.keys.update(key.id, {
      name: "renamed",
      scopes: ["execute", "sessions"],
      networkAllow: ["example.com"],
      policy: "audit",
    });
    expect(updated).toMatchObject({
      name: "renamed",
      scopes: ["execute", "sessions"],
      networkAllow: ["example.com"],
      policy: "audit",
      userId: "dave",
    });
    expect((await store.keys.authenticate(token))?.scopes).toEqual(["execute", "sessions"]);
    const cleared = await store.keys.update(key.id, { networkAllow: null, policy: null });
    expect(cleared).toMatchObject({ networkAllow: null, policy: null, name: "renamed" });
    const rotated = await store.keys.rotate(key.id);
    expect(rotated?.token).not.toBe(token);
    expect(await store.keys.authenticate(token)).toBeNull();
    expect((await store.keys.authenticate(rotated!.token))?.id).toBe(key.id);
    await store.keys.revoke(key.id);
    expect(await store.keys.update(key.id, { name: "x" })).toBeNull();
    expect(await store.keys.rotate(key.id)).toBeNull();
    expect(await store.keys.rotate("key_unknown")).toBeNull();
  });
});
