/**
 * A worker's claim loop, output over Redis, kills, the reaper's handling of
 * dead workers and their sessions, drain, and hostile Redis messages — on a
 * real PostgreSQL and Redis, with a stand-in engine (no sandbox).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { silentLogger } from "../../src/audit/logger.js";
import { ClusterQueue, type NewQueued } from "../../src/cluster/queue.js";
import { ClusterRedis } from "../../src/cluster/redis.js";
import { ClusterWorker } from "../../src/cluster/worker.js";
import { Reaper } from "../../src/cluster/reaper.js";
import { channels, MAX_MESSAGE_BYTES } from "../../src/cluster/events.js";
import { toJob } from "../../src/cluster/job.js";
import type { ExecutionRequest } from "../../src/executions/execution.js";
import {
  resultOf,
  type Row,
  freshDb,
  REDIS_URL,
  testStore,
  type TestDb,
  LIMITS,
} from "./queue-db.js";
import { FakeEngine, fakeWorkerOptions, until } from "./worker-fakes.js";

let db: TestDb;
let redis: ClusterRedis;
let queue: ClusterQueue;
const workers: ClusterWorker[] = [];
let seq = 0;

function job(userId: string, code = "print(1)", retryOnFailure = true): NewQueued {
  const request: ExecutionRequest = {
    language: "python",
    files: [{ path: "main.py", content: code }],
    limits: LIMITS,
    network: null,
    retryOnFailure,
    userId,
    source: "api",
  };
  const n = ++seq;
  return {
    id: `exec_w${String(n).padStart(6, "0")}`,
    userId,
    keyId: null,
    source: "api",
    language: "python",
    files: request.files,
    limits: LIMITS,
    job: toJob(request),
    reservationMb: 128,
    createdAt: Date.now(),
  };
}

async function startWorker(id: string, engine = new FakeEngine()): Promise<ClusterWorker> {
  const w = new ClusterWorker(fakeWorkerOptions({ pool: db.pool, redis, queue, id, engine }));
  await w.start();
  workers.push(w);
  return w;
}

const statusOf = (id: string) => queue.statusOf(id);

beforeAll(async () => {
  db = await freshDb();
  redis = new ClusterRedis({ url: REDIS_URL, prefix: db.prefix, logger: silentLogger });
  queue = new ClusterQueue(db.pool, {
    maxQueueSize: 100,
    maxQueuedPerUser: 100,
    maxPerUser: 10,
    maxConcurrentTotal: 0,
  });
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.close();
});
afterAll(async () => {
  await redis.close();
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query<Row>("TRUNCATE executions, execution_output, events, sessions, workers");
});

describe("cluster worker", () => {
  it("claims queued work, streams its output over Redis and records the end", async () => {
    const j = job("ann", "hello");
    const heard: unknown[] = [];
    const off = redis.subscribe(channels.exec(j.id), (m) => heard.push(JSON.parse(m.toString())));
    await new Promise((r) => setTimeout(r, 100)); // the SUBSCRIBE reaches Redis
    await queue.submit(j);
    await startWorker("w1");
    await until(async () => (await statusOf(j.id)) === "completed");
    await until(() => heard.some((m) => (m as { t: string }).t === "end"));
    off();
    expect(heard).toEqual([
      { t: "status", status: "running" },
      { t: "output", stream: "stdout", data: "ran hello\n" },
      { t: "end", status: "completed" },
    ]);
    const { rows } = await db.pool.query<Row>(
      "SELECT worker_id, attempt, request FROM executions WHERE id = $1",
      [j.id],
    );
    expect(rows[0]).toEqual({ worker_id: "w1", attempt: 1, request: null });
  });

  it("kills a running job when told over Redis", async () => {
    const j = job("bea", "sleep");
    await queue.submit(j);
    const engine = new FakeEngine();
    await startWorker("w1", engine);
    await until(() => engine.started.includes(j.id));
    const killed = await queue.kill(j.id, "by bea");
    await redis.publish(channels.kill(killed!.workerId!), {
      t: "kill",
      id: j.id,
      reason: "by bea",
    });
    await until(async () => (await statusOf(j.id)) === "killed");
  });

  it("drops hostile and oversized Redis messages and keeps working", async () => {
    const raw = new Redis(REDIS_URL);
    const engine = new FakeEngine();
    await startWorker("w1", engine);
    const j = job("cid", "sleep");
    await queue.submit(j);
    await until(() => engine.started.includes(j.id));
    const kill = db.prefix + channels.kill("w1");
    await raw.publish(kill, "not json{");
    await raw.publish(kill, JSON.stringify({ t: "kill", id: "../../etc", reason: "x" }));
    await raw.publish(
      kill,
      JSON.stringify({ t: "kill", id: j.id, reason: "x".repeat(MAX_MESSAGE_BYTES) }),
    );
    await raw.publish(kill, JSON.stringify({ t: "kill", id: j.id, reason: { toString: 1 } }));
    await raw.publish(db.prefix + channels.wake(), Buffer.alloc(2 * MAX_MESSAGE_BYTES, 0x41));
    await new Promise((r) => setTimeout(r, 300));
    expect(engine.runs.has(j.id)).toBe(true); // none of them killed it
    expect(await statusOf(j.id)).toBe("running");
    const next = job("cid", "after");
    await queue.submit(next);
    await until(async () => (await statusOf(next.id)) === "completed");
    await raw.quit();
  });

  it("reaps a dead worker: retries what may retry, ends the rest WORKER_LOST, ends its sessions", async () => {
    const store = testStore(db.pool);
    const reaper = new Reaper({
      pool: db.pool,
      queue,
      store,
      logger: silentLogger,
      workerTimeoutMs: 1000,
      queueTimeoutMs: 60_000,
      maxRetries: 1,
    });
    await db.pool.query<Row>(
      `INSERT INTO workers (id, name, version, url, state, started_at, heartbeat_at, max_concurrent, memory_budget_mb)
       VALUES ('dead', 'dead', 't', 'http://x', 'active', 0, 0, 4, 1024)`,
    );
    const retry = job("dan");
    const noRetry = job("dan", "x", false);
    const exhausted = job("eve");
    for (const j of [retry, noRetry, exhausted]) await queue.submit(j);
    for (let i = 0; i < 3; i++)
      await queue.claim({
        workerId: "dead",
        languages: ["python"],
        environments: [],
        freeMemoryMb: 4096,
      });
    await db.pool.query<Row>("UPDATE executions SET attempt = 2 WHERE id = $1", [exhausted.id]);
    await store.sessions.register({
      id: "sess_dead",
      userId: "dan",
      keyId: null,
      workerId: "dead",
      language: "python",
      createdAt: Date.now(),
    });
    const report = await reaper.pass();
    expect(report.dead).toEqual(["dead"]);
    expect(report.requeued).toEqual([retry.id]);
    expect(report.lost.sort()).toEqual([noRetry.id, exhausted.id].sort());
    expect(report.sessionsEnded).toEqual(["sess_dead"]);
    expect(await statusOf(retry.id)).toBe("queued");
    const { rows } = await db.pool.query<Row>(
      "SELECT status, result FROM executions WHERE id = $1",
      [exhausted.id],
    );
    expect(rows[0]!.status).toBe("error");
    expect(resultOf(rows[0]!.result).error).toMatchObject({
      code: "WORKER_LOST",
      retryable: true,
    });
    const s = await db.pool.query<Row>("SELECT end_reason FROM sessions WHERE id = 'sess_dead'");
    expect(s.rows[0]!.end_reason).toBe("worker_lost");
    const ev = await db.pool.query<Row>(
      "SELECT count(*)::int AS n FROM events WHERE event = 'session_ended'",
    );
    expect(ev.rows[0]!.n).toBe(1);
    // Idempotent: a second pass finds nothing to do; nothing is left running.
    expect(await reaper.pass()).toMatchObject({
      dead: [],
      requeued: [],
      lost: [],
      sessionsEnded: [],
    });
    const running = await db.pool.query<Row>(
      "SELECT count(*)::int AS n FROM executions WHERE status = 'running'",
    );
    expect(running.rows[0]!.n).toBe(0);
    // The re-queued job runs on a live worker.
    await startWorker("w2");
    await until(async () => (await statusOf(retry.id)) === "completed");
  });

  it("a worker declared gone kills its runs and ends its sessions, its late result is dropped, and it rejoins", async () => {
    const engine = new FakeEngine();
    const w = await startWorker("w1", engine);
    const j = job("fin", "sleep");
    await queue.submit(j);
    await until(() => engine.started.includes(j.id));
    // The reaper gave up on w1 and re-queued its job (as after a network partition).
    await db.pool.query<Row>("UPDATE workers SET state = 'gone' WHERE id = 'w1'");
    await db.pool.query<Row>(
      "UPDATE executions SET status = 'queued', worker_id = NULL WHERE id = $1",
      [j.id],
    );
    await w.heartbeat();
    await until(() => w.runningIds.length === 0);
    expect(engine.sessionsEnded).toEqual(["worker declared gone"]);
    // Nothing of its old life left running: it comes back under its id and claims again.
    await until(() => engine.started.filter((id) => id === j.id).length === 2);
    // The killed first run's result was never written: the job is running again, not `killed`.
    expect(await statusOf(j.id)).toBe("running");
    const { rows } = await db.pool.query<Row>("SELECT state FROM workers WHERE id = 'w1'");
    expect(rows[0]!.state).toBe("active");
  });

  it("drains on SIGTERM: no new claims, runs finish, row gone", async () => {
    const engine = new FakeEngine(4, 400);
    const w = await startWorker("w1", engine);
    const first = job("gil", "first");
    await queue.submit(first);
    await until(() => engine.started.includes(first.id));
    const draining = w.drain(10_000);
    const later = job("gil", "later");
    await queue.submit(later);
    await draining;
    expect(await statusOf(first.id)).toBe("completed");
    expect(await statusOf(later.id)).toBe("queued");
    const { rows } = await db.pool.query<Row>("SELECT state FROM workers WHERE id = 'w1'");
    expect(rows[0]!.state).toBe("gone");
  });
});

describe("a worker restarted under the same id", () => {
  it("settles what its previous process left running before it claims", async () => {
    const reaper = new Reaper({
      pool: db.pool,
      queue,
      store: testStore(db.pool),
      logger: silentLogger,
      workerTimeoutMs: 60_000,
      queueTimeoutMs: 60_000,
      maxRetries: 2,
    });
    // A process ran as "fixed", claimed a job and died without a word: its row still looks alive.
    await db.pool.query(
      `INSERT INTO workers (id, name, version, url, state, started_at, heartbeat_at, max_concurrent, memory_budget_mb)
       VALUES ('fixed', 'fixed', 't', 'http://x', 'active', 0, ${Date.now()}, 4, 1024)`,
    );
    const j = job("hank");
    await queue.submit(j);
    await queue.claim({
      workerId: "fixed",
      languages: ["python"],
      environments: [],
      freeMemoryMb: 4096,
    });
    expect(await statusOf(j.id)).toBe("running");
    const report = await reaper.releaseWorker("fixed");
    expect(report.requeued).toEqual([j.id]);
    const after = new FakeEngine();
    await startWorker("fixed", after);
    await until(async () => (await statusOf(j.id)) === "completed");
    const { rows } = await db.pool.query<Row>("SELECT attempt FROM executions WHERE id = $1", [
      j.id,
    ]);
    expect(rows[0]!.attempt).toBe(2);
  });
});
