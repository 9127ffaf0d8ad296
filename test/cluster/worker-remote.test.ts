/**
 * An API node's ClusterService with a worker (stand-in engine): submit,
 * output over Redis, `done` from the record even when Redis drops the end,
 * kills, language checks, and a hostile publisher flooding an execution's
 * channel (the API node keeps at most the run's own output caps).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { pino } from "pino";
import { silentLogger } from "../../src/audit/logger.js";
import { ClusterQueue } from "../../src/cluster/queue.js";
import { ClusterRedis } from "../../src/cluster/redis.js";
import { ClusterWorker } from "../../src/cluster/worker.js";
import { ClusterService } from "../../src/cluster/cluster-service.js";
import { channels } from "../../src/cluster/events.js";
import { ConfigSchema } from "../../src/config/schema.js";
import { RuntimeRegistry } from "../../src/runtimes/registry.js";
import type { CreateExecutionInput } from "../../src/executions/request.js";
import { freshDb, REDIS_URL, type TestDb } from "./queue-db.js";
import { FakeEngine, fakeWorkerOptions, quietMetrics } from "./worker-fakes.js";

let db: TestDb;
let redis: ClusterRedis;
let queue: ClusterQueue;
let service: ClusterService;
const workers: ClusterWorker[] = [];
const config = ConfigSchema.parse({ dataDir: "/tmp/warden-unused", maxQueuedPerUser: 50 });

async function startWorker(
  id: string,
  engine: FakeEngine,
  workerRedis = redis,
): Promise<ClusterWorker> {
  const w = new ClusterWorker(
    fakeWorkerOptions({ pool: db.pool, redis: workerRedis, queue, id, engine }),
  );
  await w.start();
  workers.push(w);
  return w;
}

const input = (code: string, language = "python"): CreateExecutionInput => ({
  language,
  code,
  retryOnFailure: true,
  wait: true,
});

beforeAll(async () => {
  db = await freshDb();
  redis = new ClusterRedis({ url: REDIS_URL, prefix: db.prefix, logger: silentLogger });
  queue = new ClusterQueue(db.pool, {
    maxQueueSize: 100,
    maxQueuedPerUser: 50,
    maxPerUser: 10,
    maxConcurrentTotal: 0,
  });
  service = new ClusterService({
    config,
    metrics: quietMetrics(),
    registry: new RuntimeRegistry(config.sandbox.searchPath, config.runtimes),
    pool: db.pool,
    redis,
    queue,
    store: await db.store(),
    logger: silentLogger,
    analyseOnWorker: true,
    pollMs: 200,
  });
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.close();
  await db.pool.query("TRUNCATE executions, execution_output, events, sessions, workers");
});
afterAll(async () => {
  await redis.close();
  await db.drop();
});

describe("cluster service (API node)", () => {
  it("refuses a language no active worker can run", async () => {
    await expect(service.submit(input("1"), { userId: "u" }, "api")).rejects.toMatchObject({
      code: "UNSUPPORTED_LANGUAGE",
    });
  });

  it("still takes submits and lists runtimes when one worker row's columns are not JSON", async () => {
    await startWorker("w-good", new FakeEngine());
    await db.pool.query(
      `INSERT INTO workers (id, name, version, url, state, started_at, heartbeat_at, max_concurrent,
         memory_budget_mb, languages, runtimes)
       VALUES ('w-bad', 'w-bad', 'test', 'http://127.0.0.1:1', 'active', 0,
         (extract(epoch from clock_timestamp()) * 1000)::bigint + 60000, 1, 4096, '[not json',
         '{not json')`,
    );
    await new Promise((r) => setTimeout(r, 1100)); // past the capability cache
    const e = await service.submit(input("print(2)"), { userId: "ann" }, "api");
    expect((await e.done).status).toBe("completed");
    // The good worker's runtimes are still listed; the bad row offers none.
    expect((await service.runtimes()).map((r) => r.language)).toContain("python");
  });

  it("runs on a worker, streams output over Redis and settles done from the record", async () => {
    await startWorker("w1", new FakeEngine());
    await new Promise((r) => setTimeout(r, 1100)); // the capability cache sees w1
    const e = await service.submit(input("print(1)"), { userId: "ann" }, "api");
    const heard: string[] = [];
    e.on("output", (c) => heard.push(c.data));
    const result = await e.done;
    expect(result).toMatchObject({ status: "completed", stdout: "ran print(1)\n" });
    expect(heard.join("")).toBe("ran print(1)\n");
    expect(service.live(e.id)).toBeUndefined();
    expect(redis.subscriptionCount).toBe(2); // the worker's wake and kill; the execution's is gone
  });

  it("settles done from the record when Redis drops the end", async () => {
    // The worker publishes under another prefix: the API node never hears it.
    const deaf = new ClusterRedis({
      url: REDIS_URL,
      prefix: `${db.prefix}other:`,
      logger: silentLogger,
    });
    await startWorker("w1", new FakeEngine(), deaf);
    await new Promise((r) => setTimeout(r, 1100));
    const e = await service.submit(input("quiet"), { userId: "bob" }, "api");
    expect(await e.done).toMatchObject({ status: "completed", stdout: "ran quiet\n" });
    await workers.pop()!.close();
    await deaf.close();
  });

  it("kills queued and running executions", async () => {
    const engine = new FakeEngine();
    await startWorker("w1", engine);
    await new Promise((r) => setTimeout(r, 1100));
    const running = await service.submit(input("sleep"), { userId: "cy" }, "api");
    while (!engine.started.includes(running.id)) await new Promise((r) => setTimeout(r, 20));
    expect(await service.killExecution(running.id, "by cy")).toBe(true);
    expect((await running.done).status).toBe("killed");
    await workers.pop()!.close();
    const queued = await service.submit(input("never"), { userId: "cy" }, "api");
    expect(await service.killExecution(queued.id, "by cy")).toBe(true);
    expect((await queued.done).status).toBe("killed");
    expect(await service.killExecution(queued.id, "again")).toBe(false);
  });

  it("holds at most its budget of live output across every execution it follows", async () => {
    const engine = new FakeEngine();
    await startWorker("w1", engine);
    await new Promise((r) => setTimeout(r, 1100));
    const budget = 1024 * 1024;
    const small = new ClusterService({
      config,
      metrics: quietMetrics(),
      registry: new RuntimeRegistry(config.sandbox.searchPath, config.runtimes),
      pool: db.pool,
      redis,
      queue,
      store: await db.store(),
      logger: silentLogger,
      analyseOnWorker: true,
      maxFollowedOutputBytes: budget,
    });
    const runs = [];
    for (let i = 0; i < 4; i++)
      runs.push(await small.submit(input("sleep"), { userId: `flood${i}` }, "api"));
    while (!runs.every((e) => engine.started.includes(e.id)))
      await new Promise((r) => setTimeout(r, 20));
    // Each run's own cap would let every one of them hold about 2 MiB.
    const raw = new Redis(REDIS_URL);
    const piece = JSON.stringify({ t: "output", stream: "stdout", data: "B".repeat(128 * 1024) });
    for (const e of runs)
      for (let i = 0; i < 8; i++) await raw.publish(db.prefix + channels.exec(e.id), piece);
    await new Promise((r) => setTimeout(r, 300));
    const kept = runs.reduce((n, e) => n + e.chunks.reduce((m, c) => m + c.data.length, 0), 0);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(budget);
    for (const e of runs) await small.killExecution(e.id, "test over");
    await Promise.all(runs.map((e) => e.done));
    await small.close(1000);
    await raw.quit();
  });

  it("logs a database outage once, not once per followed execution per poll", async () => {
    const engine = new FakeEngine();
    await startWorker("w1", engine);
    await new Promise((r) => setTimeout(r, 1100));
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
    // Records come from a database that is away; the queue (submit) still works.
    const away = await db.store();
    const records = Object.create(away.records) as typeof away.records;
    records.get = () => Promise.reject(new Error("connection refused"));
    const blind = new ClusterService({
      config,
      metrics: quietMetrics(),
      registry: new RuntimeRegistry(config.sandbox.searchPath, config.runtimes),
      pool: db.pool,
      redis,
      queue,
      store: { ...away, records },
      logger,
      analyseOnWorker: true,
      pollMs: 20,
    });
    const runs = [];
    for (let i = 0; i < 3; i++)
      runs.push(await blind.submit(input("sleep"), { userId: `blind${i}` }, "api"));
    await new Promise((r) => setTimeout(r, 600));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(2);
    for (const e of runs) await blind.killExecution(e.id, "test over");
    await blind.close(100);
  });

  it("keeps at most the run's output caps from a hostile publisher", async () => {
    const engine = new FakeEngine();
    await startWorker("w1", engine);
    await new Promise((r) => setTimeout(r, 1100));
    const e = await service.submit(input("sleep"), { userId: "dee" }, "api");
    while (!engine.started.includes(e.id)) await new Promise((r) => setTimeout(r, 20));
    const raw = new Redis(REDIS_URL);
    const piece = JSON.stringify({ t: "output", stream: "stdout", data: "A".repeat(256 * 1024) });
    for (let i = 0; i < 40; i++) await raw.publish(db.prefix + channels.exec(e.id), piece); // 10 MiB
    await raw.publish(
      db.prefix + channels.exec(e.id),
      JSON.stringify({ t: "end", status: "completed" }),
    );
    await new Promise((r) => setTimeout(r, 300));
    const kept = e.chunks.reduce((n, c) => n + c.data.length, 0);
    expect(kept).toBeLessThanOrEqual(2 * (e.request.limits.outputBytes + 1024));
    // A forged end settles nothing: the record is still running.
    expect(e.result).toBeNull();
    expect(await service.killExecution(e.id, "done")).toBe(true);
    expect((await e.done).status).toBe("killed");
    await raw.quit();
  });
});

describe("Redis down", () => {
  it("degrades without throwing: publishes fail fast, subscriptions wait, close returns", async () => {
    const warned: string[] = [];
    const logger = {
      ...silentLogger,
      warn: (_o: unknown, m: string) => void warned.push(m),
    } as typeof silentLogger;
    const down = new ClusterRedis({ url: "redis://127.0.0.1:1", prefix: "wt:down:", logger });
    const off = down.subscribe(channels.wake(), () => undefined);
    expect(await down.publish(channels.wake(), { t: "wake" })).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    off();
    await down.close();
    expect(warned).toContain("redis unavailable; live events paused");
  });
});
