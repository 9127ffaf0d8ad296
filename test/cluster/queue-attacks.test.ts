/**
 * Big queued requests (files in base64, up to the body limit) must not slow
 * what every node waits on. The claim runs under one lock for all workers:
 * reading each queued row's whole request on every claim let one user cut
 * the cluster's claim rate (measured in blocks PostgreSQL read from the
 * table's TOAST, its own statistics, not in time). The submit runs under
 * one lock for all API nodes: a row written under it made every other
 * submit wait (and hold a pool connection) as long as the write took.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterQueue } from "../../src/cluster/queue.js";
import { toJob } from "../../src/cluster/job.js";
import type { ExecutionRequest } from "../../src/executions/execution.js";
import { freshDb, type TestDb, LIMITS } from "./queue-db.js";

const ROWS = 40;
const FILE_BYTES = 2 * 1024 * 1024;

let db: TestDb;
/** One connection: the claim's statistics are flushed from it on demand. */
let single: pg.Pool;

async function toastBlocks(): Promise<number> {
  await single.query("SELECT pg_stat_force_next_flush()");
  await new Promise((r) => setTimeout(r, 200));
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT pg_stat_clear_snapshot(), coalesce(toast_blks_read, 0) + coalesce(toast_blks_hit, 0) AS n
     FROM pg_statio_user_tables WHERE relname = 'executions'`,
  );
  return Number(rows[0]?.n ?? 0);
}

beforeAll(async () => {
  db = await freshDb();
  single = new pg.Pool({ connectionString: db.url, max: 1 });
  // The database is dropped with FORCE at the end: a connection still open then is ended.
  single.on("error", () => undefined);
  const queue = new ClusterQueue(single, {
    maxQueueSize: 1000,
    maxQueuedPerUser: 1000,
    maxPerUser: 1000,
    maxConcurrentTotal: 0,
  });
  for (let i = 0; i < ROWS; i++) {
    const files = [{ path: "blob.bin", content: randomBytes(FILE_BYTES) }];
    const request: ExecutionRequest = {
      language: "python",
      files,
      limits: LIMITS,
      network: null,
      retryOnFailure: false,
      userId: "hog",
      source: "api",
      ...(i === 0 ? { environment: { name: "data-1.0", key: "x", binds: [], env: {} } } : {}),
    };
    await queue.submit({
      id: `exec_big${String(i).padStart(4, "0")}`,
      userId: "hog",
      keyId: null,
      source: "api",
      language: "python",
      files,
      limits: LIMITS,
      job: toJob(request),
      reservationMb: 128,
      createdAt: Date.now() + i,
    });
  }
}, 120_000);

afterAll(async () => {
  await single?.end();
  await db?.drop();
});

describe("the queue's cluster-wide locks", () => {
  it("reads each queued row's first bytes only, and still honours environments", async () => {
    const queue = new ClusterQueue(single, {
      maxQueueSize: 1000,
      maxQueuedPerUser: 1000,
      maxPerUser: 1000,
      maxConcurrentTotal: 0,
    });
    const room = { workerId: "w1", languages: ["python"], environments: [], freeMemoryMb: 100_000 };
    const before = await toastBlocks();
    const first = await queue.claim(room);
    const read = (await toastBlocks()) - before;
    // The oldest job names an environment this worker lacks: the next one is taken.
    expect(first?.id).toBe("exec_big0001");
    // The queued requests fill ROWS * FILE_BYTES * 4/3 bytes: thousands of 8 KiB blocks.
    const all = Math.ceil((ROWS * FILE_BYTES * 4) / 3 / 8192);
    expect(read).toBeLessThan(all / 20);
    const withIt = await queue.claim({ ...room, environments: ["data-1.0"] });
    expect(withIt?.id).toBe("exec_big0000");
  });

  it("does not hold the cluster's submit lock while a row is being written", async () => {
    const queue = new ClusterQueue(db.pool, {
      maxQueueSize: 1000,
      maxQueuedPerUser: 1000,
      maxPerUser: 1000,
      maxConcurrentTotal: 0,
    });
    const submit = (id: string) => {
      const files = [{ path: "main.py", content: "print(1)" }];
      const request: ExecutionRequest = {
        language: "python",
        files,
        limits: LIMITS,
        network: null,
        retryOnFailure: false,
        userId: "slow",
        source: "api",
      };
      return queue.submit({
        id,
        userId: "slow",
        keyId: null,
        source: "api",
        language: "python",
        files,
        limits: LIMITS,
        job: toJob(request),
        reservationMb: 128,
        createdAt: Date.now(),
      });
    };
    // A write that cannot finish yet (the same id, uncommitted elsewhere): it waits on the row.
    const blocker = await db.pool.connect();
    await blocker.query("BEGIN");
    await blocker.query(
      `INSERT INTO executions (id, user_id, source, language, status, code_sha256, code_bytes, limits, created_at)
       VALUES ('exec_stuck', 'x', 'api', 'python', 'finished', 'x', 1, '{}', 0)`,
    );
    const stuck = submit("exec_stuck").catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    // Everyone else's submit goes through meanwhile.
    const other = await Promise.race([
      submit("exec_other").then(() => "queued"),
      new Promise((r) => setTimeout(() => r("waited on the lock"), 5000)),
    ]);
    await blocker.query("ROLLBACK");
    blocker.release();
    await stuck;
    expect(other).toBe("queued");
  });
});
