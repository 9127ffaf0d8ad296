/**
 * Ways to leave a cluster run `running` forever (counted against its user's
 * and the cluster's caps, never reaped while its worker heartbeats): a result
 * whose text PostgreSQL refuses (a NUL from a hostile analyser's finding), a
 * database that fails the final write longer than the worker's retries, a
 * worker whose row was deleted, and a corrupt queued row that made every
 * reaper pass fail. Real PostgreSQL and Redis; a stand-in engine.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { blankResult } from "../../src/contract/result.js";
import { ClusterQueue, type NewQueued } from "../../src/cluster/queue.js";
import { ClusterRedis } from "../../src/cluster/redis.js";
import { ClusterWorker, type WorkerOptions } from "../../src/cluster/worker.js";
import { GONE_RETENTION_MS, Reaper } from "../../src/cluster/reaper.js";
import { toJob } from "../../src/cluster/job.js";
import type { ExecutionRequest } from "../../src/executions/execution.js";
import {
  freshDb,
  REDIS_URL,
  resultOf,
  testStore,
  type Row,
  type TestDb,
  LIMITS,
} from "./queue-db.js";
import { FakeEngine, fakeWorkerOptions, until } from "./worker-fakes.js";

let db: TestDb;
let redis: ClusterRedis;
let queue: ClusterQueue;
const workers: ClusterWorker[] = [];
let seq = 0;

function job(userId: string, retryOnFailure = false): NewQueued {
  const request: ExecutionRequest = {
    language: "python",
    files: [{ path: "main.py", content: "print(1)" }],
    limits: LIMITS,
    network: null,
    retryOnFailure,
    userId,
    source: "api",
  };
  return {
    id: `exec_a${String(++seq).padStart(6, "0")}`,
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

async function startWorker(id: string, extra: Partial<WorkerOptions> = {}): Promise<ClusterWorker> {
  const w = new ClusterWorker({
    ...fakeWorkerOptions({ pool: db.pool, redis, queue, id, engine: new FakeEngine() }),
    finishRetryMs: { first: 1, max: 20 },
    ...extra,
  });
  await w.start();
  workers.push(w);
  return w;
}

const ended = (id: string) => async () =>
  !["queued", "running"].includes((await queue.statusOf(id)) ?? "running");

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
  await db.pool.query("TRUNCATE executions, execution_output, events, sessions, workers");
});

describe("a cluster run is never left running", () => {
  it("records a refusal whose message carries a NUL (a hostile analyser's finding)", async () => {
    const j = job("ann");
    await queue.submit(j);
    await startWorker("w-nul", {
      beforeRun: async (_job, claimed) =>
        blankResult(claimed.id, "rejected", {
          code: "MALICIOUS_CODE",
          message: "forbidden import of 'os\0evil'",
          retryable: false,
        }),
    });
    await until(ended(j.id));
    const { rows } = await db.pool.query<Row>(
      "SELECT status, result FROM executions WHERE id = $1",
      [j.id],
    );
    expect(rows[0]?.["status"]).toBe("rejected");
    expect(resultOf(rows[0]?.["result"]).error?.code).toBe("MALICIOUS_CODE");
    const events = await db.pool.query<Row>(
      "SELECT message FROM events WHERE execution_id = $1 AND event = 'rejected'",
      [j.id],
    );
    expect(String(events.rows[0]?.["message"])).toContain("os\uFFFDevil");
  });

  it("keeps trying the final write through a long database failure", async () => {
    const j = job("bea");
    await queue.submit(j);
    // The final write fails 12 times (more than the worker once tried), then works.
    let failures = 12;
    const flaky = Object.create(queue) as ClusterQueue;
    flaky.finish = (...args) => {
      if (failures-- > 0) return Promise.reject(new Error("Connection terminated unexpectedly"));
      return queue.finish(...args);
    };
    await startWorker("w-flaky", { queue: flaky });
    await until(ended(j.id));
    expect(failures).toBeLessThan(0);
    const status = await queue.statusOf(j.id);
    expect(["completed", "error"]).toContain(status);
  });

  it("records the bare end when the result itself is what the database refuses", async () => {
    const j = job("cid");
    await queue.submit(j);
    const refusing = Object.create(queue) as ClusterQueue;
    refusing.finish = (target, result, event, at) =>
      result.status === "completed"
        ? Promise.reject(new Error("value too long"))
        : queue.finish(target, result, event, at);
    await startWorker("w-refused", { queue: refusing });
    await until(ended(j.id));
    const { rows } = await db.pool.query<Row>("SELECT result FROM executions WHERE id = $1", [
      j.id,
    ]);
    expect(resultOf(rows[0]?.["result"])).toMatchObject({
      status: "error",
      error: { code: "INTERNAL", retryable: true },
    });
  });

  it("settles the runs and sessions of a worker whose row was deleted", async () => {
    const j = job("dan");
    await queue.submit(j);
    const w = await startWorker("w-deleted");
    await w.close(); // stops claiming; the row (state gone) is then deleted outright
    await db.pool.query(
      "UPDATE executions SET status = 'running', worker_id = 'w-deleted', attempt = 1 WHERE id = $1",
      [j.id],
    );
    await testStore(db.pool).sessions.register({
      id: "sess_deleted",
      userId: "dan",
      keyId: null,
      workerId: "w-deleted",
      language: null,
      createdAt: Date.now(),
    });
    await db.pool.query("DELETE FROM workers WHERE id = 'w-deleted'");
    const report = await reaper().pass();
    expect(report.lost).toEqual([j.id]);
    expect(report.sessionsEnded).toEqual(["sess_deleted"]);
    expect(await queue.statusOf(j.id)).toBe("error");
  });

  it("is not stopped by a running row whose request is not JSON", async () => {
    const [bad, good] = [job("eve"), job("eve", true)];
    await queue.submit(bad);
    await queue.submit(good);
    await db.pool.query(
      `INSERT INTO workers (id, name, version, url, state, started_at, heartbeat_at, max_concurrent, memory_budget_mb)
       VALUES ('w-dead', 'w-dead', 'test', 'http://127.0.0.1:1', 'gone', 0, 0, 1, 1)`,
    );
    await db.pool.query(
      "UPDATE executions SET status = 'running', worker_id = 'w-dead', attempt = 1 WHERE id = ANY($1)",
      [[bad.id, good.id]],
    );
    await db.pool.query("UPDATE executions SET request = '{not json' WHERE id = $1", [bad.id]);
    const report = await reaper().pass();
    expect(report.lost).toEqual([bad.id]);
    expect(report.requeued).toEqual([good.id]);
  });
});

describe("worker rows", () => {
  it("are deleted a day after their worker went, once nothing is left on them", async () => {
    const old = Date.now() - GONE_RETENTION_MS - 60_000;
    for (const id of ["w-old", "w-old-busy", "w-recent"])
      await db.pool.query(
        `INSERT INTO workers (id, name, version, url, state, started_at, heartbeat_at, max_concurrent, memory_budget_mb)
         VALUES ($1, $1, 'test', 'http://127.0.0.1:1', 'gone', $2, $2, 1, 1)`,
        [id, id === "w-recent" ? Date.now() - 60_000 : old],
      );
    const j = job("fay");
    await queue.submit(j);
    await db.pool.query(
      "UPDATE executions SET status = 'running', worker_id = 'w-old-busy', attempt = 1 WHERE id = $1",
      [j.id],
    );
    // One pass settles w-old-busy's run (lost), then deletes both old rows.
    const report = await reaper().pass();
    expect(report.lost).toEqual([j.id]);
    const left = await db.pool.query<{ id: string }>("SELECT id FROM workers ORDER BY id");
    expect(left.rows.map((r) => r.id)).toEqual(["w-recent"]);
  });
});

function reaper(): Reaper {
  return new Reaper({
    pool: db.pool,
    queue,
    store: testStore(db.pool),
    logger: silentLogger,
    workerTimeoutMs: 60_000,
    queueTimeoutMs: 600_000,
    maxRetries: 2,
  });
}

describe("a planted queue row", () => {
  it("cannot get a sandbox larger than the worker's own maxima", async () => {
    const { withinMaxima } = await import("../../src/cluster/node.js");
    const { ConfigSchema } = await import("../../src/config/schema.js");
    const config = ConfigSchema.parse({ maxMemoryMB: 512 });
    const limits = {
      timeoutMs: 1000,
      killGraceMs: 100,
      memoryMb: 256,
      cpuPercent: 50,
      diskMb: 10,
      pids: 10,
      outputBytes: 1000,
      openFiles: 64,
    };
    expect(withinMaxima(config, limits)).toEqual(limits);
    expect(() => withinMaxima(config, { ...limits, memoryMb: 1_000_000 })).toThrow(
      /limits\.memoryMb: 1000000 is over this worker's maxMemoryMB \(512\)/,
    );
    expect(() => withinMaxima(config, { ...limits, timeoutMs: 10 ** 9 })).toThrow(/maxTimeout/);
  });
});
