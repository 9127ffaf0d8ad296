/**
 * `warden bench --cluster`: executions per second of a short python program
 * through one API node with one worker, then with two, against a single
 * `warden serve` in the same run on the same machine, as ratios. Every setup
 * is real processes on loopback; the cluster gets a scratch PostgreSQL
 * database and a private redis-server, all removed afterwards.
 *
 * On one machine the workers share its cores: the 2-worker figure shows what
 * the API node and the shared queue cost and whether they hold a second
 * worker back, not what a second machine would add (see docs/deployment.md).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { LocalCluster } from "./local-cluster.js";
import { healthy, startNode, stopNode, sweepNode, type NodeSpec } from "./local-nodes.js";
import { freePort } from "./local-services.js";
import { closedLoop, quantile, round } from "./measure.js";

export const DEFAULT_BENCH_DATABASE_URL = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

export interface ClusterBenchOptions {
  /** Executions per measurement. */
  requests: number;
  concurrency: number;
  /** PostgreSQL whose role may create databases: the bench makes its own there. */
  databaseUrl: string;
  /** A JSON config file every node starts from. */
  configFile?: string | undefined;
  log?: (line: string) => void;
}

export interface ClusterBenchRow {
  setup: string;
  executions: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
}

export interface ClusterBenchResult {
  rows: ClusterBenchRow[];
  /** Executions/s each worker ran in the 2-worker measurement (from the shared store). */
  perWorker: Record<string, number>;
  /** The 1-worker figure: what one worker sustains through the API node. */
  perWorkerCeiling: number;
  ratios: { oneWorkerVsSingle: number; twoWorkersVsSingle: number; twoVsOneWorker: number };
  errorSamples: string[];
}

const CODE = "print(1)";

/** `requests` executions (wait=true) from `concurrency` clients; latency per execution. */
async function load(
  url: string,
  token: string,
  o: ClusterBenchOptions,
  errors: string[],
  setup: string,
): Promise<ClusterBenchRow> {
  const { latencies, failures, seconds } = await closedLoop(o.requests, o.concurrency, async () => {
    try {
      const res = await fetch(`${url}/v1/executions`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ language: "python", code: CODE, userId: "bench", timeout: 60 }),
      });
      const body = (await res.json()) as { status?: string; error?: { message?: string } };
      if (res.status === 200 && body.status === "completed") return true;
      if (errors.length < 10)
        errors.push(`${setup}: ${res.status} ${body.status ?? ""} ${body.error?.message ?? ""}`);
      return false;
    } catch (error) {
      if (errors.length < 10) errors.push(`${setup}: ${(error as Error).message}`);
      return false;
    }
  });
  return {
    setup,
    executions: latencies.length,
    perSecond: round(latencies.length / seconds),
    p50Ms: round(quantile(latencies, 0.5)),
    p99Ms: round(quantile(latencies, 0.99)),
    failures,
  };
}

/** The config every node of every setup gets: wide limits, so this measures the machine. */
function benchConfig(o: ClusterBenchOptions): Record<string, unknown> {
  const base = o.configFile
    ? (JSON.parse(readFileSync(o.configFile, "utf8")) as Record<string, unknown>)
    : {};
  const lavish = { burst: 100_000, perMinute: 1_000_000, perHour: 10_000_000 };
  return {
    ...base,
    maxConcurrentSandboxes: o.concurrency,
    maxSandboxesPerUser: o.concurrency,
    maxQueuedPerUser: o.concurrency * 4,
    maxQueueSize: o.concurrency * 8,
    server: {
      ...(base.server ?? {}),
      rateLimits: { perKey: lavish, perIp: lavish },
    },
  };
}

async function warmUp(
  url: string,
  token: string,
  o: ClusterBenchOptions,
  setup: string,
): Promise<void> {
  const errors: string[] = [];
  await load(
    url,
    token,
    { ...o, requests: Math.min(10, o.requests), concurrency: 2 },
    errors,
    setup,
  );
}

/** One `warden serve` (no database, no Redis): the baseline. */
async function measureSingle(o: ClusterBenchOptions, errors: string[]): Promise<ClusterBenchRow> {
  const tag = `b${randomBytes(3).toString("hex")}`;
  const root = mkdtempSync(join(tmpdir(), `warden-${tag}-single-`));
  mkdirSync(join(root, "data"));
  const spec: NodeSpec = {
    name: "single",
    role: "all",
    root,
    runDir: `/run/warden-${tag}-single`,
    cgroupParent: `warden-${tag}-single`,
    uidBase: 789_000,
    uidCount: Math.max(200, o.concurrency * 2),
    port: await freePort(),
    internalPort: await freePort(),
    config: benchConfig(o),
    env: {},
    adminToken: `bench-${randomBytes(16).toString("hex")}`,
  };
  try {
    const node = await startNode(spec, healthy);
    try {
      await warmUp(node.url, spec.adminToken, o, "single node");
      return await load(node.url, spec.adminToken, o, errors, "single node (warden serve)");
    } finally {
      await stopNode(node);
    }
  } finally {
    await sweepNode(spec);
  }
}

/** Executions per worker id since `since` (epoch ms), from the shared store. */
async function countsByWorker(databaseUrl: string, since: number): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ worker_id: string | null; n: string }>(
      "SELECT worker_id, count(*) AS n FROM executions WHERE created_at >= $1 AND status = 'completed' GROUP BY worker_id",
      [since],
    );
    return new Map(rows.map((r) => [r.worker_id ?? "none", Number(r.n)]));
  } finally {
    await client.end();
  }
}

export async function benchCluster(o: ClusterBenchOptions): Promise<ClusterBenchResult> {
  const log = o.log ?? (() => undefined);
  const errors: string[] = [];
  const rows: ClusterBenchRow[] = [];
  const show = (row: ClusterBenchRow): void => {
    rows.push(row);
    log(
      `  ${row.setup.padEnd(30)} ${`${row.perSecond} exec/s`.padStart(14)}   p50 ${row.p50Ms} ms   p99 ${row.p99Ms} ms   failures ${row.failures}`,
    );
  };
  show(await measureSingle(o, errors));
  const cluster = await LocalCluster.start({
    workers: 1,
    adminDatabaseUrl: o.databaseUrl,
    config: benchConfig(o),
    uidBase: 790_000,
    uidSpan: Math.max(200, o.concurrency * 2),
  });
  const perWorker: Record<string, number> = {};
  try {
    const { url } = cluster.api;
    await warmUp(url, cluster.adminToken, o, "1 worker");
    show(await load(url, cluster.adminToken, o, errors, "API node + 1 worker"));
    const second = await cluster.addWorker();
    await warmUp(url, cluster.adminToken, o, "2 workers");
    const since = Date.now();
    const started = performance.now();
    show(await load(url, cluster.adminToken, o, errors, "API node + 2 workers"));
    const seconds = (performance.now() - started) / 1000;
    const counts = await countsByWorker(cluster.database.url, since);
    for (const node of [cluster.workers[0]!, second])
      perWorker[node.spec.name] = round((counts.get(node.spec.workerId!) ?? 0) / seconds);
  } finally {
    await cluster.close();
  }
  const [single, one, two] = rows.map((r) => r.perSecond) as [number, number, number];
  const ratio = (a: number, b: number): number => (b > 0 ? round(a / b) : 0);
  return {
    rows,
    perWorker,
    perWorkerCeiling: one,
    ratios: {
      oneWorkerVsSingle: ratio(one, single),
      twoWorkersVsSingle: ratio(two, single),
      twoVsOneWorker: ratio(two, one),
    },
    errorSamples: errors,
  };
}
