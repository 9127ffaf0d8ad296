/**
 * A user who fills their share of the queue with requests at the body limit
 * (files in base64) must not slow every claim of the cluster: the claim runs
 * under one lock for all workers, so reading each queued row's whole request
 * on every claim let one user cut the cluster's claim rate. Measured in
 * blocks PostgreSQL read from the executions table's TOAST (its own
 * statistics), not in time: a claim reads each row's first bytes only.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterQueue } from "../../src/cluster/queue.js";
import { toJob } from "../../src/cluster/job.js";
import type { ExecutionRequest } from "../../src/executions/execution.js";
import { freshDb, type TestDb } from "./queue-db.js";

const LIMITS = {
  timeoutMs: 5000,
  killGraceMs: 500,
  memoryMb: 128,
  cpuPercent: 50,
  diskMb: 64,
  pids: 64,
  outputBytes: 65536,
  openFiles: 64,
};
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

describe("the claim over big queued requests", () => {
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
});
