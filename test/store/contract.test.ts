/**
 * The store's contract: one suite of behaviour, run against SQLite and against
 * PostgreSQL (a fresh database per run). Whatever a single node does with
 * its records, keys, artifacts and sessions, a cluster's store does the same.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blankResult, type ExecutionResult } from "../../src/contract/result.js";
import type { Store } from "../../src/store/store.js";
import { BACKENDS, newRecord } from "./backends.js";

const completed = (id: string, stdout: string, stderr = ""): ExecutionResult => ({
  ...blankResult(id, "completed", null, { executionTimeMs: 5 }),
  success: true,
  exitCode: 0,
  stdout,
  stderr,
});

describe.each(BACKENDS)("store contract: $name", (backend) => {
  let store: Store;
  let reopen: () => Promise<Store>;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    ({ store, reopen, dispose } = await backend.open());
  });
  afterAll(() => dispose());

  describe("records", () => {
    it("follows queued → running → final, with its events in order", async () => {
      const r = newRecord();
      const ev = (event: string) => ({
        executionId: r.id,
        userId: r.userId,
        level: "info" as const,
        event,
        message: event,
      });
      await store.records.queued(r, ev("queued"));
      expect(await store.records.get(r.id)).toMatchObject({
        id: r.id,
        status: "queued",
        startedAt: null,
        result: null,
        codeBytes: 8,
        limits: { memoryMb: 128 },
      });
      await store.records.started(r.id, r.createdAt + 10, ev("started"));
      expect((await store.records.get(r.id))!.status).toBe("running");
      await store.records.finished(r.id, completed(r.id, "hi\n", "warn\n"), r.createdAt + 20, [
        ev("completed"),
        { ...ev("extra"), data: { n: 1 } },
      ]);
      const done = (await store.records.get(r.id))!;
      expect(done).toMatchObject({
        status: "completed",
        startedAt: new Date(r.createdAt + 10).toISOString(),
        finishedAt: new Date(r.createdAt + 20).toISOString(),
        result: { stdout: "hi\n", stderr: "warn\n", success: true },
      });
      const events = await store.records.events(r.id);
      expect(events.map((e) => e.event)).toEqual(["queued", "started", "completed", "extra"]);
      expect(events[3]).toMatchObject({ data: { n: 1 }, userId: "u1", executionId: r.id });
    });

    it("writes a record that started at once as running", async () => {
      const r = newRecord({ startedAt: Date.now() });
      await store.records.queued(r);
      expect((await store.records.get(r.id))!.status).toBe("running");
    });

    it("applies one execution's writes in call order, even when nobody waits between them", async () => {
      const r = newRecord();
      const writes = [
        store.records.queued(r),
        store.records.started(r.id, r.createdAt + 1),
        store.records.finished(r.id, completed(r.id, "x"), r.createdAt + 2),
      ];
      await Promise.all(writes);
      expect((await store.records.get(r.id))!.status).toBe("completed");
    });

    it("keeps output as bytes: control bytes, U+FFFD and astral characters round-trip", async () => {
      const r = newRecord();
      await store.records.queued(r);
      const stdout = "a\u0000b\u0001\u001b[31mred\u007f\r\n\uFFFD\uFFFD😀é";
      const result = completed(r.id, stdout, "\u0000");
      result.compile = {
        status: "completed",
        exitCode: 0,
        signal: null,
        stdout: "cc\u0000",
        stderr: "ce",
        truncated: { stdout: false, stderr: false },
      };
      await store.records.finished(r.id, result, Date.now());
      const got = (await store.records.get(r.id))!.result!;
      expect(got.stdout).toBe(stdout);
      expect(got.stderr).toBe("\u0000");
      expect(got.compile).toMatchObject({ stdout: "cc\u0000", stderr: "ce" });
      // Each U+FFFD is one byte stored: never more than the program wrote.
      const expected = Buffer.byteLength(stdout) - 2 * 2 + 1 + 3 + 2;
      expect(await store.records.outputBytes(r.id)).toBe(expected);
      const bare = (await store.records.get(r.id, false))!.result!;
      expect(bare.stdout).toBe("");
      expect((await store.records.withOutput(r.id, bare)).stdout).toBe(stdout);
    });

    it("lists newest first, by user, status and time, a page at a time", async () => {
      const base = Date.now() - 1_000_000;
      const mine = [];
      for (let i = 0; i < 5; i++) {
        const r = newRecord({ userId: "lister", createdAt: base + i * 1000 });
        mine.push(r);
        await store.records.queued(r);
        if (i % 2 === 0)
          await store.records.finished(r.id, completed(r.id, "out"), base + i * 1000);
      }
      // Two at the same time: the id breaks the tie.
      const twin = newRecord({ userId: "lister", createdAt: base + 4000 });
      await store.records.queued(twin);
      await store.records.queued(newRecord({ userId: "other", createdAt: base + 2500 }));

      const all = await store.records.list({ userId: "lister", limit: 10 });
      expect(all.map((r) => r.id)).toEqual([twin, ...mine.slice().reverse()].map((r) => r.id));
      expect(all.find((r) => r.status === "completed")!.result!.stdout).toBe("");
      expect(all[0]!.createdAtMs).toBe(base + 4000);

      const page1 = await store.records.list({ userId: "lister", limit: 2 });
      const last = page1.at(-1)!;
      const page2 = await store.records.list({
        userId: "lister",
        limit: 2,
        before: { createdAt: last.createdAtMs, id: last.id },
      });
      expect([...page1, ...page2].map((r) => r.id)).toEqual(all.slice(0, 4).map((r) => r.id));

      const done = await store.records.list({
        userId: "lister",
        statuses: ["completed"],
        limit: 10,
      });
      expect(done.map((r) => r.id)).toEqual([mine[4]!.id, mine[2]!.id, mine[0]!.id]);
      const window = await store.records.list({
        userId: "lister",
        fromMs: base + 1000,
        toMs: base + 3000,
        limit: 10,
      });
      expect(window.map((r) => r.id)).toEqual([mine[2]!.id, mine[1]!.id]);
      const everyone = await store.records.list({
        fromMs: base + 2500,
        toMs: base + 2501,
        limit: 10,
      });
      expect(everyone.map((r) => r.userId)).toEqual(["other"]);
    });

    it("stores audit events in call order, also without waiting for each", async () => {
      const id = newRecord().id;
      const writes = Array.from({ length: 50 }, (_, i) =>
        store.records.event({ executionId: id, level: "debug", event: `e${i}`, message: "m" }),
      );
      await Promise.all(writes);
      const events = await store.records.events(id);
      expect(events.map((e) => e.event)).toEqual(writes.map((_, i) => `e${i}`));
      expect(await store.records.events(id, 3)).toHaveLength(3);
      await store.records.event({ level: "warn", event: "no_execution", message: "x" });
    });

    it("ends what a stopped Warden left queued or running as error, and nothing else", async () => {
      const queued = newRecord();
      const running = newRecord({ startedAt: Date.now() });
      const final = newRecord();
      await store.records.queued(queued);
      await store.records.queued(running);
      await store.records.queued(final);
      await store.records.finished(final.id, completed(final.id, "ok"), Date.now());
      const orphans = await store.records.failOrphans();
      expect(orphans).toEqual(expect.arrayContaining([queued.id, running.id]));
      expect(orphans).not.toContain(final.id);
      for (const id of [queued.id, running.id]) {
        const record = (await store.records.get(id))!;
        expect(record.status).toBe("error");
        expect(record.result!.error).toMatchObject({ code: "INTERNAL", retryable: true });
        expect((await store.records.events(id)).map((e) => e.event)).toEqual(["orphaned"]);
      }
      expect((await store.records.get(final.id))!.status).toBe("completed");
      expect(await store.records.failOrphans()).toEqual([]);
    });

    it("expires old final records with their output and old events, never live ones", async () => {
      const old = Date.now() - 10 * 86_400_000;
      const gone = newRecord({ createdAt: old });
      const live = newRecord({ createdAt: old, startedAt: old });
      await store.records.queued(gone, {
        executionId: gone.id,
        level: "info",
        event: "x",
        message: "x",
      });
      await store.records.queued(live);
      await store.records.finished(gone.id, completed(gone.id, "bytes"), old);
      const removed = await store.records.expire(5 * 86_400_000);
      expect(removed.executions).toBeGreaterThanOrEqual(1);
      expect(await store.records.get(gone.id)).toBeNull();
      expect(await store.records.outputBytes(gone.id)).toBe(0);
      expect(await store.records.get(live.id)).not.toBeNull();
      await store.records.failOrphans(); // leave nothing running for the tests after
    });
  });

  describe("keys", () => {
    it("makes a key whose token authenticates until it is revoked", async () => {
      const { key, token } = await store.keys.create({
        name: "ci",
        scopes: ["execute", "execute"],
        userId: "alice",
        networkAllow: ["pypi.org"],
        policy: "audit",
      });
      expect(token).toMatch(/^wdn_/);
      expect(key).toMatchObject({
        name: "ci",
        scopes: ["execute"],
        userId: "alice",
        revokedAt: null,
        networkAllow: ["pypi.org"],
        policy: "audit",
      });
      expect(await store.keys.authenticate(token)).toMatchObject({ id: key.id, userId: "alice" });
      expect(await store.keys.authenticate(`${token}x`)).toBeNull();
      expect((await store.keys.get(key.id))!.lastUsedAt).not.toBeNull();
      expect((await store.keys.list()).map((k) => k.id)).toContain(key.id);
      // Authenticated (and so cached) just now: a revoke on this node drops it at once.
      expect(await store.keys.revoke(key.id)).toBe(true);
      expect(await store.keys.authenticate(token)).toBeNull();
      expect(await store.keys.revoke(key.id)).toBe(false);
      expect((await store.keys.get(key.id))!.revokedAt).not.toBeNull();
      expect(await store.keys.get("key_nope")).toBeNull();
    });

    it("refuses a bad user id or no scopes", async () => {
      await expect(
        store.keys.create({ name: "x", scopes: ["execute"], userId: "a b" }),
      ).rejects.toMatchObject({
        code: "INVALID_REQUEST",
      });
      await expect(
        store.keys.create({ name: "x", scopes: [], userId: "ab" }),
      ).rejects.toMatchObject({
        code: "INVALID_REQUEST",
      });
    });

    it("knows whether an admin exists; the environment's admin token is created, then re-pointed", async () => {
      const fresh = await backend.open();
      try {
        const keys = fresh.store.keys;
        expect(await keys.hasAdmin()).toBe(false);
        await keys.create({ name: "u", scopes: ["execute"], userId: "u" });
        expect(await keys.hasAdmin()).toBe(false);
        await keys.ensureEnvAdmin("wdn_first_token_0123456789");
        expect(await keys.hasAdmin()).toBe(true);
        expect(await keys.authenticate("wdn_first_token_0123456789")).toMatchObject({
          id: "key_env_admin",
          userId: "admin",
        });
        await keys.revoke("key_env_admin");
        await keys.ensureEnvAdmin("wdn_second_token_0123456789");
        expect(await keys.authenticate("wdn_first_token_0123456789")).toBeNull();
        expect(await keys.authenticate("wdn_second_token_0123456789")).toMatchObject({
          id: "key_env_admin",
          revokedAt: null,
        });
        expect((await keys.list()).filter((k) => k.id === "key_env_admin")).toHaveLength(1);
      } finally {
        await fresh.dispose();
      }
    });
  });

  describe("artifacts", () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

    it("saves, lists and opens for the owner or an admin only", async () => {
      const saved = await store.artifacts.save({
        ownerId: "exe_art1",
        userId: "alice",
        name: "out/b.bin",
        mimeType: "application/octet-stream",
        content: bytes,
      });
      expect(saved).toMatchObject({ ownerId: "exe_art1", name: "out/b.bin", size: 256 });
      await store.artifacts.save({
        ownerId: "exe_art1",
        userId: "alice",
        name: "a.txt",
        mimeType: "text/plain",
        content: Buffer.from("hi"),
      });
      expect((await store.artifacts.list("exe_art1")).map((a) => a.name)).toEqual([
        "a.txt",
        "out/b.bin",
      ]);
      const opened = await store.artifacts.open("exe_art1", "out/b.bin", "alice", false);
      expect(opened.content.equals(bytes)).toBe(true);
      expect(opened.mimeType).toBe("application/octet-stream");
      await expect(
        store.artifacts.open("exe_art1", "out/b.bin", "mallory", false),
      ).rejects.toMatchObject({
        code: "NOT_FOUND",
      });
      expect(
        (await store.artifacts.open("exe_art1", "a.txt", "root", true)).content.toString(),
      ).toBe("hi");
      await expect(store.artifacts.open("exe_art1", "nope", "alice", true)).rejects.toMatchObject({
        code: "NOT_FOUND",
      });
    });

    it("replaces an artifact saved again under the same name", async () => {
      const first = await store.artifacts.save({
        ownerId: "ses_r",
        userId: "bob",
        name: "fig.png",
        mimeType: "image/png",
        content: Buffer.from("one"),
      });
      const second = await store.artifacts.save({
        ownerId: "ses_r",
        userId: "bob",
        name: "fig.png",
        mimeType: "text/plain",
        content: Buffer.from("second"),
      });
      expect(second.id).not.toBe(first.id);
      expect(await store.artifacts.list("ses_r")).toEqual([second]);
      const opened = await store.artifacts.open("ses_r", "fig.png", "bob", false);
      expect(opened).toMatchObject({ size: 6, mimeType: "text/plain" });
      expect(opened.content.toString()).toBe("second");
    });

    it("expires artifacts older than the retention", async () => {
      await store.artifacts.save({
        ownerId: "exe_exp",
        userId: "bob",
        name: "x",
        mimeType: "text/plain",
        content: Buffer.from("x"),
      });
      expect(await store.artifacts.expire(60_000)).toBe(0);
      await new Promise((r) => setTimeout(r, 20));
      expect(await store.artifacts.expire(10)).toBeGreaterThanOrEqual(1);
      expect(await store.artifacts.list("exe_exp")).toEqual([]);
      await expect(store.artifacts.open("exe_exp", "x", "bob", false)).rejects.toMatchObject({
        code: "NOT_FOUND",
      });
    });
  });

  describe("session registry", () => {
    it("registers sessions, counts a user's live ones and ends them", async () => {
      const now = Date.now();
      const row = (id: string, userId: string, workerId: string) => ({
        id,
        userId,
        keyId: "key_s",
        workerId,
        language: "python",
        createdAt: now,
      });
      await store.sessions.register(row("ses_1", "carol", "w1"));
      await store.sessions.register(row("ses_2", "carol", "w2"));
      await store.sessions.register(row("ses_3", "dan", "w1"));
      expect(await store.sessions.get("ses_1")).toEqual({
        ...row("ses_1", "carol", "w1"),
        endedAt: null,
        endReason: null,
      });
      expect(await store.sessions.get("ses_nope")).toBeNull();
      expect(await store.sessions.liveCountOf("carol")).toBe(2);

      await store.sessions.ended("ses_2", "closed", now + 5);
      await store.sessions.ended("ses_2", "idle"); // the first reason stands
      expect(await store.sessions.get("ses_2")).toMatchObject({
        endedAt: now + 5,
        endReason: "closed",
      });
      expect(await store.sessions.liveCountOf("carol")).toBe(1);

      const ended = await store.sessions.endAllOf("w1", "worker_lost");
      expect(ended.map((s) => s.id).sort()).toEqual(["ses_1", "ses_3"]);
      expect(ended.every((s) => s.endReason === "worker_lost" && s.endedAt !== null)).toBe(true);
      expect(await store.sessions.liveCountOf("carol")).toBe(0);
      expect(await store.sessions.endAllOf("w1", "again")).toEqual([]);
      expect(await store.sessions.expire(60_000)).toBe(0);
    });
  });

  it("answers writable, and another store on the same database sees the same state", async () => {
    expect(await store.isWritable()).toBe(true);
    const r = newRecord();
    await store.records.queued(r);
    const other = await reopen();
    expect((await other.records.get(r.id))!.id).toBe(r.id);
  });
});
