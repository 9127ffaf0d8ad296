/**
 * In process, end to end: an API node's ClusterService queues; a real worker
 * (openWarden with role worker: root, real sandboxes) claims and runs. Block
 * mode is applied on the worker, since an `api` node has no sandbox to
 * analyse in.
 */
import { quietMetrics } from "./worker-fakes.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { openWarden, type EmbeddedWarden } from "../../src/warden.js";
import { ClusterService } from "../../src/cluster/cluster-service.js";
import { ClusterRedis } from "../../src/cluster/redis.js";
import { ClusterQueue } from "../../src/cluster/queue.js";
import { ConfigSchema } from "../../src/config/schema.js";
import { RuntimeRegistry } from "../../src/runtimes/registry.js";
import { freshDb, REDIS_URL, type TestDb } from "./queue-db.js";

let db: TestDb;
let worker: EmbeddedWarden;
let api: ClusterService;
let apiRedis: ClusterRedis;

beforeAll(async () => {
  db = await freshDb();
  const store = await db.store();
  const cluster = {
    role: "worker",
    databaseUrl: db.url,
    redisUrl: REDIS_URL,
    redisKeyPrefix: db.prefix,
    secret: "s".repeat(32),
    workerId: "w-sandbox",
    heartbeatMs: 200,
    workerTimeoutMs: 2000,
  };
  worker = await openWarden({
    env: { WARDEN_DATA_DIR: mkdtempSync(join(tmpdir(), "warden-cw-")), WARDEN_POOL: "false" },
    overrides: { cluster, "policy.mode": "block" },
    shared: { store, pool: db.pool },
  });
  const config = ConfigSchema.parse({
    cluster: { ...cluster, role: "api" },
    policy: { mode: "block" },
  });
  apiRedis = new ClusterRedis({ url: REDIS_URL, prefix: db.prefix, logger: silentLogger });
  api = new ClusterService({
    config,
    metrics: quietMetrics(),
    registry: new RuntimeRegistry(config.sandbox.searchPath, config.runtimes),
    pool: db.pool,
    redis: apiRedis,
    queue: new ClusterQueue(db.pool, {
      maxQueueSize: 10,
      maxQueuedPerUser: 10,
      maxPerUser: 5,
      maxConcurrentTotal: 0,
    }),
    store,
    logger: silentLogger,
    analyseOnWorker: true,
  });
});
afterAll(async () => {
  await api?.close(1000);
  await apiRedis?.close();
  await worker?.shutdown(5000);
  await db?.drop();
});

const run = (code: string) =>
  api.submit(
    { language: "python", code, retryOnFailure: true, wait: true },
    {
      userId: "e2e",
      policy: null,
    },
    "api",
  );

describe("API node + real worker", () => {
  it("runs print(1) in a real sandbox on the worker", async () => {
    const e = await run("print(1)");
    const result = await e.done;
    expect(result).toMatchObject({ status: "completed", stdout: "1\n", exitCode: 0 });
    const { rows } = await db.pool.query("SELECT worker_id, status FROM executions WHERE id = $1", [
      e.id,
    ]);
    expect(rows[0]).toEqual({ worker_id: "w-sandbox", status: "completed" });
  });

  it("applies block mode on the worker: the record ends rejected with the policy's code", async () => {
    const e = await run("import os\nos.system('id')\n");
    const result = await e.done;
    expect(result).toMatchObject({ status: "rejected", error: { code: "MALICIOUS_CODE" } });
    expect(result.stdout).toBe("");
  });
});
