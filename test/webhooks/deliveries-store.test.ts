/**
 * The delivery store on both backends (claims only final executions, leases,
 * fenced attempt records, bounded log, ids listing), and on PostgreSQL two
 * deliverers sharing one database: every delivery is sent exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Store } from "../../src/store/store.js";
import { executionId } from "../../src/util/ids.js";
import { resolveLimits } from "../../src/executions/limits.js";
import { BACKENDS } from "../store/backends.js";
import { eventually } from "../helpers/server.js";
import { deliverer, finishedExecution, testConfig } from "./fixture.js";
import { startReceiver } from "./receiver.js";

const config = testConfig({ allowHosts: ["127.0.0.1"] });

describe.each(BACKENDS)("webhook store on $name", (backend) => {
  let store: Store;
  let reopen: () => Promise<Store>;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    ({ store, reopen, dispose } = await backend.open());
  });
  afterAll(async () => dispose());

  const add = async (executionIdValue: string, id: string) =>
    store.webhooks.add({
      id,
      executionId: executionIdValue,
      userId: "u",
      keyId: "k",
      url: "http://127.0.0.1:1/",
      format: "warden",
      batchId: null,
      createdAt: Date.now() - 1000,
    });

  it("claims only deliveries of final executions, once per lease; only the holder records", async () => {
    const running = executionId();
    await store.records.queued({
      id: running,
      userId: "u",
      keyId: null,
      source: "api",
      language: "bash",
      files: [],
      limits: resolveLimits(config, {}),
      createdAt: Date.now(),
    });
    const done = await finishedExecution(store, config, "u");
    await add(running, "dlv_A0000000000000000000000000");
    await add(done, "dlv_B0000000000000000000000000");
    const now = Date.now();
    const first = await store.webhooks.claim("one", now, 60_000, 10);
    expect(first.map((d) => d.id)).toEqual(["dlv_B0000000000000000000000000"]);
    expect(await store.webhooks.claim("two", now, 60_000, 10)).toEqual([]);
    const attempt = { attempt: 1, at: now, status: 500, error: "x".repeat(10_000), durationMs: 5 };
    const outcome = { state: "pending" as const, nextAttemptAt: now - 1, attempt };
    expect(await store.webhooks.finishAttempt(first[0]!.id, "two", outcome)).toBe(false);
    expect(await store.webhooks.finishAttempt(first[0]!.id, "one", outcome)).toBe(true);
    const again = await store.webhooks.claim("two", Date.now(), 60_000, 10);
    expect(again.map((d) => [d.id, d.attempts])).toEqual([[first[0]!.id, 1]]);
    const log = (await store.webhooks.attempts([first[0]!.id])).get(first[0]!.id)!;
    expect(log).toHaveLength(1);
    expect(log[0]!.error!.length).toBeLessThanOrEqual(300);
    // A lease that ran out is claimable again (a node died mid-send).
    expect((await store.webhooks.claim("three", Date.now() + 120_000, 1000, 10)).length).toBe(1);
  });

  it("lists records by ids, and each key's secret is made once and rotates", async () => {
    const ids = [
      await finishedExecution(store, config, "u"),
      await finishedExecution(store, config, "v"),
    ];
    const rows = await store.records.list({ ids, limit: 10 });
    expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(await store.records.list({ ids, userId: "u", limit: 10 })).toHaveLength(1);
    const { key } = await store.keys.create({ name: "k", scopes: ["execute"], userId: "u" });
    const secret = await store.keys.webhookSecret(key.id);
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    const other = await reopen();
    expect(await other.keys.webhookSecret(key.id)).toBe(secret);
    const rotated = await store.keys.rotateWebhookSecret(key.id);
    expect(rotated).not.toBe(secret);
    expect(await store.keys.webhookSecret(key.id)).toBe(rotated);
    expect(await store.keys.webhookSecret("key_missing")).toBeNull();
  });
});

describe("two deliverers on one PostgreSQL database", () => {
  it("send each delivery exactly once", async () => {
    const pg = BACKENDS.find((b) => b.name === "postgres")!;
    const { store, reopen, dispose } = await pg.open();
    const receiver = await startReceiver((_req, res) => setTimeout(() => res.end(), 20));
    const second = await reopen();
    const cfg = testConfig({ allowHosts: ["127.0.0.1"], concurrency: 3, pollMs: 50 });
    const a = deliverer(store, cfg);
    const b = deliverer(second, cfg);
    try {
      const { key } = await store.keys.create({ name: "k", scopes: ["execute"], userId: "u" });
      const count = 40;
      for (let i = 0; i < count; i++) {
        const id = await finishedExecution(store, cfg, "u");
        await a.service.register({
          executionId: id,
          userId: "u",
          keyId: key.id,
          url: `${receiver.url}/hook`,
          format: "warden",
        });
      }
      a.service.start();
      b.service.start();
      await eventually(async () => receiver.received.length >= count, 30_000);
      await new Promise((r) => setTimeout(r, 300)); // any duplicate would arrive by now
      const ids = receiver.received.map((r) => r.headers["warden-delivery-id"]);
      expect(ids).toHaveLength(count);
      expect(new Set(ids).size).toBe(count);
      const sent = (s: typeof a) => s.audited.filter((e) => e.event === "webhook_delivered").length;
      expect(sent(a) + sent(b)).toBe(count);
      // Both took part (the lease, not luck, kept them apart).
      expect(sent(a)).toBeGreaterThan(0);
      expect(sent(b)).toBeGreaterThan(0);
    } finally {
      await a.service.close();
      await b.service.close();
      await receiver.close();
      await dispose();
    }
  });
});
