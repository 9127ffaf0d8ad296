/**
 * The audit search and counts (records.searchEvents / countEvents) and
 * dashboard logins behave the same on SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Store } from "../../src/store/store.js";
import { BACKENDS } from "./backends.js";

describe.each(BACKENDS)("audit search: $name", (backend) => {
  let store: Store;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    ({ store, dispose } = await backend.open());
    const ev = (event: string, userId: string, level: "info" | "warn" = "info") => ({
      userId,
      level,
      event,
      message: `${event} by ${userId}`,
      executionId: event === "network_denied" ? "exec_01ABCDEFGHJKMNPQRSTVWXYZ01" : null,
    });
    for (let i = 0; i < 5; i++) await store.records.event(ev("network_denied", "alice", "warn"));
    for (let i = 0; i < 3; i++) await store.records.event(ev("auth_failure", "bob", "warn"));
    await store.records.event(ev("queued", "alice"));
  });
  afterAll(() => dispose());

  it("filters by event, user, level and execution, newest first", async () => {
    const all = await store.records.searchEvents({ limit: 100 });
    expect(all).toHaveLength(9);
    expect(all[0]!.event).toBe("queued");
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => b - a));
    const denied = await store.records.searchEvents({ events: ["network_denied"], limit: 100 });
    expect(denied).toHaveLength(5);
    expect(denied[0]!.executionId).toBe("exec_01ABCDEFGHJKMNPQRSTVWXYZ01");
    expect(await store.records.searchEvents({ userId: "bob", limit: 100 })).toHaveLength(3);
    expect(await store.records.searchEvents({ levels: ["info"], limit: 100 })).toHaveLength(1);
    expect(
      await store.records.searchEvents({
        executionId: "exec_01ABCDEFGHJKMNPQRSTVWXYZ01",
        limit: 100,
      }),
    ).toHaveLength(5);
    expect(
      await store.records.searchEvents({ events: ["auth_failure", "queued"], limit: 100 }),
    ).toHaveLength(4);
    expect(await store.records.searchEvents({ fromMs: Date.now() + 60_000, limit: 100 })).toEqual(
      [],
    );
  });

  it("pages by id without gaps or repeats", async () => {
    const seen: number[] = [];
    let beforeId: number | undefined;
    for (;;) {
      const page = await store.records.searchEvents({ beforeId, limit: 4 });
      seen.push(...page.map((e) => e.id));
      if (page.length < 4) break;
      beforeId = page[page.length - 1]!.id;
    }
    expect(seen).toHaveLength(9);
    expect(new Set(seen).size).toBe(9);
  });

  it("counts events per name in time buckets, empty buckets included", async () => {
    const now = Date.now();
    const fromMs = Math.floor(now / 60_000) * 60_000 - 4 * 60_000;
    const buckets = await store.records.countEvents({
      fromMs,
      toMs: fromMs + 6 * 60_000,
      bucketMs: 60_000,
    });
    expect(buckets).toHaveLength(6);
    const total: Record<string, number> = {};
    for (const b of buckets)
      for (const [k, n] of Object.entries(b.counts)) total[k] = (total[k] ?? 0) + n;
    expect(total).toEqual({ network_denied: 5, auth_failure: 3, queued: 1 });
    const only = await store.records.countEvents({
      fromMs,
      toMs: fromMs + 6 * 60_000,
      bucketMs: 60_000,
      events: ["auth_failure"],
    });
    expect(only.flatMap((b) => Object.keys(b.counts))).toEqual(
      expect.arrayContaining(["auth_failure"]),
    );
    expect(only.every((b) => Object.keys(b.counts).every((k) => k === "auth_failure"))).toBe(true);
  });

  it("keeps dashboard logins until they expire or are deleted", async () => {
    const now = Date.now();
    await store.dashboardSessions.create({
      idHash: "a".repeat(64),
      keyId: "key_x",
      createdAt: now,
      expiresAt: now + 60_000,
    });
    await store.dashboardSessions.create({
      idHash: "b".repeat(64),
      keyId: "key_x",
      createdAt: now - 120_000,
      expiresAt: now - 60_000,
    });
    expect(await store.dashboardSessions.get("a".repeat(64))).toMatchObject({ keyId: "key_x" });
    expect(await store.dashboardSessions.expire(now)).toBe(1);
    expect(await store.dashboardSessions.get("b".repeat(64))).toBeNull();
    expect(await store.dashboardSessions.delete("a".repeat(64))).toBe(true);
    expect(await store.dashboardSessions.get("a".repeat(64))).toBeNull();
  });
});
