/**
 * A node's cluster machinery by role: every node runs the reaper; an API
 * node (`api`, `all`) gets a ClusterService in place of the local queue; a
 * worker (`worker`, `all`) gets the claim loop over its local engine. The
 * store (PostgreSQL) and its pool are given: the composition root opens them.
 */
import type pg from "pg";
import { openStore } from "../store/open.js";
import { PgStore } from "../store/pg/store.js";
import type { Logger } from "../audit/logger.js";
import { quotaEnforcer } from "../usage/quotas.js";
import type { Config } from "../config/schema.js";
import { defaultWorkerId } from "../config/cluster-config.js";
import { WardenError } from "../errors.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import type { Store } from "../store/store.js";
import type { ExecutionService } from "../executions/service.js";
import type { Metrics } from "../executions/metrics.js";
import type { Analyzer } from "../policy/analyzer.js";
import { checkPolicy } from "../policy/execution-policy.js";
import { resolveEgress } from "../network/policy.js";
import { packageVersion } from "../util/version.js";
import { ClusterService } from "./cluster-service.js";
import { ClusterQueue } from "./queue.js";
import { Reaper } from "./reaper.js";
import { ClusterRedis } from "./redis.js";
import { ClusterWorker, type LocalEngine } from "./worker.js";
import { judgeFromJob, type QueuedJob } from "./job.js";

/** What a worker node runs jobs with: the single node's own parts. */
export interface LocalParts {
  service: ExecutionService;
  analyzer: Analyzer;
  /** Live sessions here (the worker's load). */
  sessionCount: () => number;
  /** Ends every live session here (the worker was declared gone). */
  endSessions?: ((reason: string) => Promise<void>) | undefined;
}

export interface StartClusterOptions {
  config: Config;
  logger: Logger;
  pool: pg.Pool;
  store: Store;
  registry: RuntimeRegistry;
  /** Present on `worker` and `all` nodes. */
  local?: LocalParts | undefined;
  /** Where API nodes reach this worker's internal listener (cluster.advertiseUrl wins). */
  workerUrl?: string | undefined;
  /**
   * A worker's internal listener, started once the node's service exists and
   * before the worker registers; resolves with the URL API nodes reach it at.
   */
  listen?: ((service: ClusterService) => Promise<string>) | undefined;
  /** The node's Prometheus metrics (the API side counts refusals in them). */
  metrics: Metrics;
}

export interface ClusterNode {
  readonly redis: ClusterRedis;
  readonly queue: ClusterQueue;
  readonly reaper: Reaper;
  /**
   * Submits into the cluster's queue: the public API on `api` and `all`, and
   * on a worker what its internal channel runs (MCP `run_code`).
   */
  readonly service: ClusterService;
  /** Worker side (`worker`, `all`). */
  readonly worker: ClusterWorker | null;
  /** Drains the worker (runs get `graceMs`), stops following, closes Redis. */
  close(graceMs: number): Promise<void>;
}

export async function startClusterNode(o: StartClusterOptions): Promise<ClusterNode> {
  const { config, logger } = o;
  const c = config.cluster;
  const role = c.role;
  if ((role === "worker" || role === "all") && !o.local)
    throw new WardenError("INTERNAL", `role ${role} needs the local sandbox engine`);
  const redis = new ClusterRedis({
    url: c.redisUrl!,
    prefix: c.redisKeyPrefix,
    logger,
    name: `warden-${role}`,
  });
  const queue = new ClusterQueue(o.pool, {
    maxQueueSize: config.maxQueueSize,
    maxQueuedPerUser: config.maxQueuedPerUser,
    maxPerUser: config.maxSandboxesPerUser,
    maxConcurrentTotal: c.maxConcurrentTotal,
  });
  const reaper = new Reaper({
    pool: o.pool,
    queue,
    store: o.store,
    redis,
    logger,
    workerTimeoutMs: c.workerTimeoutMs,
    queueTimeoutMs: config.queueTimeout * 1000,
    maxRetries: config.maxRetries,
  });
  reaper.start();
  const service = new ClusterService({
    config,
    quotas: quotaEnforcer(
      config,
      o.store,
      (e) => void o.store.records.event(e).catch(() => undefined),
    ),
    registry: o.registry,
    pool: o.pool,
    redis,
    queue,
    store: o.store,
    logger,
    metrics: o.metrics,
    analyseOnWorker: role === "api",
  });
  const workerUrl = o.local && o.listen ? await o.listen(service) : o.workerUrl;
  const worker = o.local ? workerOf({ ...o, workerUrl }, o.local, redis, queue) : null;
  if (worker) {
    // What a previous process under this id left running is settled before it claims anew.
    const left = await reaper.releaseWorker(worker.id);
    if (left.requeued.length + left.lost.length + left.sessionsEnded.length > 0)
      logger.warn({ worker: worker.id, ...left }, "settled what this worker id left behind");
    await worker.start();
  }
  logger.info({ role, worker: worker?.id }, "cluster node started");
  return {
    redis,
    queue,
    reaper,
    service,
    worker,
    async close(graceMs) {
      await Promise.all([worker?.drain(graceMs), service.close(graceMs)]);
      await reaper.stop();
      await redis.close();
    },
  };
}

function workerOf(
  o: StartClusterOptions,
  local: LocalParts,
  redis: ClusterRedis,
  queue: ClusterQueue,
): ClusterWorker {
  const { config } = o;
  const c = config.cluster;
  const { service, analyzer } = local;
  const scheduler = service.scheduler;
  const engine: LocalEngine = {
    get activeCount() {
      return scheduler.activeCount;
    },
    maxConcurrent: config.maxConcurrentSandboxes,
    freeMemoryMb: () => service.memoryBudgetMb - scheduler.memoryReservedMb,
    get memoryReservedMb() {
      return scheduler.memoryReservedMb;
    },
    memoryBudgetMb: service.memoryBudgetMb,
    run: (request, id) => scheduler.submit(request, id),
    kill: (id, reason) => scheduler.kill(id, reason),
    sessionCount: local.sessionCount,
    endSessions: local.endSessions,
  };
  // Local retries of Warden's own failures are audited as the single node's recorder does.
  scheduler.onEvent((event) => {
    if (event.type !== "retried") return;
    void o.store.records
      .event({
        executionId: event.execution.id,
        userId: event.execution.userId,
        level: "warn",
        event: "retried",
        message: `attempt ${event.attempt + 1} after a transient failure: ${event.reason}`,
      })
      .catch((error: unknown) => o.logger.warn({ err: error }, "audit write failed"));
  });
  const id = c.workerId ?? defaultWorkerId();
  const installed = o.registry
    .definitions()
    .map((d) => d.language)
    .filter((language) => {
      try {
        o.registry.resolve(language);
        return true;
      } catch {
        return false;
      }
    });
  return new ClusterWorker({
    pool: o.pool,
    redis,
    queue,
    logger: o.logger.child({ worker: id }),
    id,
    name: c.workerName ?? id,
    version: packageVersion(),
    url: c.advertiseUrl ?? o.workerUrl ?? `http://${c.internalHost}:${c.internalPort}`,
    heartbeatMs: c.heartbeatMs,
    languages: () => installed,
    runtimes: async () =>
      (await o.registry.available()).map(({ language, version }) => ({ language, version })),
    environments: async () => (await service.environments.list()).map((e) => e.name),
    engine,
    resolve: (job) => ({
      // A row is checked against THIS worker's maxima, as a request is at submit.
      limits: withinMaxima(config, job.limits),
      environment: service.environments.resolve(job.environment ?? undefined, "environment"),
      // Re-bounded by THIS worker's network config: the row supplies only allow and ports.
      network: job.network ? resolveEgress(job.network, config.network) : null,
      judge: job.judge
        ? judgeFromJob(job.judge, (l) => withinMaxima(config, l), config.judging.maxTests)
        : undefined,
    }),
    beforeRun: async (job, claimed) => {
      if (job.policy === undefined) return null; // analysed on the API node before submit
      const policy = await checkPolicy(
        analyzer,
        service,
        policyInput(job),
        { policy: job.policy },
        claimed.userId,
      );
      if (policy.rejected) return { ...policy.rejected, id: claimed.id };
      if (policy.findings) policy.audit(claimed.id);
      return null;
    },
  });
}

/** The job's program as the policy check reads a request (base64 files decoded there). */
function policyInput(job: QueuedJob): Parameters<typeof checkPolicy>[2] {
  return {
    language: job.language,
    code: undefined,
    entrypoint: job.entrypoint,
    files: job.files.map((f) => ({
      path: f.path,
      content: f.content,
      encoding: f.base64 ? ("base64" as const) : ("utf8" as const),
    })),
  };
}

/**
 * The PostgreSQL pool of a cluster node, named by role in pg_stat_activity.
 * An idle connection's error (the server restarted) is logged, not thrown:
 * the pool replaces the connection on next use.
 */
/**
 * Opens a node's shared state: the PostgreSQL implementation of the store
 * (keys, records, artifacts, sessions, migrated on open), whose pool the
 * queue and the worker rows use too.
 */
export async function openSharedState(
  config: Config,
  logger: Logger,
): Promise<{ store: Store; pool: pg.Pool }> {
  const store = await openStore({
    dataDir: config.dataDir,
    databaseUrl: config.cluster.databaseUrl,
    applicationName: `warden-${config.cluster.role}`,
    logger,
  });
  if (!(store instanceof PgStore))
    throw new WardenError("INTERNAL", "cluster mode needs a PostgreSQL database URL");
  return { store, pool: store.pool };
}

/**
 * A queued job's limits, refused when any is over this worker's own maxima:
 * whoever can write a row must not get a sandbox larger than the worker allows.
 */
export function withinMaxima(config: Config, limits: QueuedJob["limits"]): QueuedJob["limits"] {
  const max: [keyof QueuedJob["limits"], number, string][] = [
    ["timeoutMs", config.maxTimeout * 1000, "maxTimeout"],
    ["memoryMb", config.maxMemoryMB, "maxMemoryMB"],
    ["cpuPercent", config.maxCpuPercent, "maxCpuPercent"],
    ["diskMb", config.maxDiskMB, "maxDiskMB"],
    ["pids", config.maxPids, "maxPids"],
    ["outputBytes", config.maxOutputBytes, "maxOutputBytes"],
    ["cpuTimeMs", config.maxTimeout * 1000, "maxTimeout"],
  ];
  for (const [name, bound, setting] of max) {
    const value = limits[name];
    if (typeof value === "number" && value > bound)
      throw new WardenError(
        "INVALID_REQUEST",
        `limits.${name}: ${value} is over this worker's ${setting} (${bound})`,
      );
  }
  return limits;
}
