/**
 * Warden in process: the whole service (sandbox host, runtimes, store,
 * scheduler) behind the spec's library API, without HTTP.
 *
 *     const warden = await openWarden();
 *     const result = await warden.execute({ code: "print(1)", language: "python", timeout: 10 }, "user-42");
 *     await warden.shutdown();
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { createLogger, silentLogger, type Logger } from "./audit/logger.js";
import { loadConfig, type LoadConfigOptions } from "./config/load.js";
import type { Config } from "./config/schema.js";
import { RuntimeRegistry } from "./runtimes/registry.js";
import { runtimeTemplate } from "./runtimes/warm.js";
import { resolveLimits } from "./executions/limits.js";
import { MiB } from "./sandbox/exec-args.js";
import { WardenError } from "./errors.js";
import { SandboxHost } from "./sandbox/host.js";
import { isOwnerAlive, processStartTicks } from "./sandbox/owner.js";
import { NotebookService } from "./notebooks/service.js";
import { Analyzer } from "./policy/analyzer.js";
import { SessionManager } from "./sessions/manager.js";
import { SnapshotStore } from "./sessions/snapshots.js";
import { auditTrail } from "./audit/trail.js";
import { egressAccounting, type EgressHook } from "./executions/egress-accounting.js";
import { quotaEnforcer } from "./usage/quotas.js";
import { SessionUsage } from "./usage/session-usage.js";
import { userClassifier } from "./usage/user-class.js";
import { Metrics } from "./executions/metrics.js";
import { lifecycleRecorder } from "./executions/recorder.js";
import { ExecutionService } from "./executions/service.js";
import { executionArtifactUrl, sessionArtifactUrl } from "./http/urls.js";
import type pg from "pg";
import { openStore } from "./store/open.js";
import type { Store } from "./store/store.js";
import { clusterProblems, defaultWorkerId, isClustered } from "./config/cluster-config.js";
import { startInternalServer, type InternalServer } from "./cluster/internal-server.js";
import type { SessionHooks } from "./sessions/types.js";
import { openSharedState, startClusterNode, type ClusterNode } from "./cluster/node.js";
import type { ClusterService } from "./cluster/cluster-service.js";

export interface OpenWardenOptions extends LoadConfigOptions {
  /** A ready config; otherwise loaded from file, env and overrides. */
  config?: Config;
  /** @default a silent logger */
  logger?: Logger;
  /** Cluster mode: the shared PostgreSQL store and its pool (docs/cluster.md). */
  shared?: { store: Store; pool: pg.Pool } | undefined;
  /** Where API nodes reach this worker's internal listener, once it is bound. */
  workerUrl?: string | undefined;
}

/**
 * The cluster's shared state (opened here unless given), or null on a single
 * node; a clear error when it is half-configured.
 */
async function sharedState(
  config: Config,
  logger: Logger,
  options: OpenWardenOptions,
): Promise<{ store: Store; pool: pg.Pool } | null> {
  const problems = clusterProblems(config.cluster);
  if (problems.length > 0)
    throw new WardenError("INVALID_REQUEST", `cluster configuration:\n${problems.join("\n")}`);
  if (!isClustered(config.cluster)) return null;
  return options.shared ?? openSharedState(config, logger);
}

/** An `api` node: HTTP over the cluster's shared state; no sandbox host, no cgroups, no root. */
export interface ApiWarden {
  readonly config: Config;
  readonly registry: RuntimeRegistry;
  /** The cluster's PostgreSQL store, and its pool (the worker directory reads it). */
  readonly store: Store;
  readonly pool: pg.Pool;
  readonly service: ClusterService;
  readonly cluster: ClusterNode;
  shutdown(deadlineMs?: number): Promise<void>;
}

export async function openApiNode(options: OpenWardenOptions = {}): Promise<ApiWarden> {
  const config = options.config ?? loadConfig(options);
  const logger = options.logger ?? (options.config ? silentLogger : createLogger(config.logLevel));
  if (config.cluster.role !== "api")
    throw new WardenError("INVALID_REQUEST", "openApiNode is for cluster.role api");
  const shared = await sharedState(config, logger, options);
  if (!shared) throw new WardenError("INVALID_REQUEST", "openApiNode needs a cluster");
  const registry = new RuntimeRegistry(config.sandbox.searchPath, config.runtimes);
  // An API node runs nothing itself: its local gauges stay 0 (the cluster's are in src/cluster/admin.ts).
  const metrics = new Metrics({
    queueDepth: () => 0,
    activeSandboxes: () => 0,
    memoryReservedMb: () => 0,
  });
  const cluster = await startClusterNode({ config, logger, ...shared, registry, metrics }).catch(
    async (error: unknown) => {
      if (!options.shared) await shared.store.close();
      throw error;
    },
  );
  return {
    config,
    registry,
    store: shared.store,
    pool: shared.pool,
    service: cluster.service,
    cluster,
    async shutdown(deadlineMs = config.server.shutdownGracePeriod * 1000) {
      await cluster.close(deadlineMs);
      if (!options.shared) await shared.store.close();
    },
  };
}

export interface EmbeddedWarden extends ExecutionService {
  readonly host: SandboxHost;
  readonly registry: RuntimeRegistry;
  /** Keys, records, audit events, artifacts, session registry (SQLite or PostgreSQL). */
  readonly store: Store;
  readonly config: Config;
  /** Long-lived sandboxes (sessions). */
  readonly sessions: SessionManager;
  /** Static analysis (Python in sandboxes, JavaScript with acorn) and policy modes. */
  readonly analyzer: Analyzer;
  /** Upload, analyse and run notebooks. */
  readonly notebooks: NotebookService;
  /** Cluster mode (`worker`, `all` on shared state): the worker and, on `all`, the API side. */
  readonly cluster: ClusterNode | null;
  /** Drains (running executions get `deadlineMs`), then releases the host and the store. */
  shutdown(deadlineMs?: number): Promise<void>;
}

/**
 * One service per data dir: its records of running executions are its own,
 * and start-up marks any it finds as orphans. A pid file names the owner.
 */
function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, "warden.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, `${process.pid} ${processStartTicks("self")}\n`);
      closeSync(fd);
      return () => unlinkSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const [pid, ticks] = readFileSync(path, "utf8").trim().split(" ").map(Number);
      if (pid && isOwnerAlive({ pid, startTicks: ticks ?? 0 }))
        throw new WardenError("INVALID_REQUEST", `another Warden (pid ${pid}) is using ${dataDir}`);
      unlinkSync(path); // left by a crashed Warden
    }
  }
  throw new WardenError("INTERNAL", `cannot lock ${dataDir}`);
}

export async function openWarden(options: OpenWardenOptions = {}): Promise<EmbeddedWarden> {
  const config = withWorkerId(options.config ?? loadConfig(options));
  const logger = options.logger ?? (options.config ? silentLogger : createLogger(config.logLevel));
  if (config.cluster.role === "api")
    throw new WardenError(
      "INVALID_REQUEST",
      "cluster.role api opens no sandbox host: use openApiNode",
    );
  const dataDir = resolve(config.dataDir);
  const unlock = lockDataDir(dataDir);
  const registry = new RuntimeRegistry(config.sandbox.searchPath, config.runtimes);
  let host: SandboxHost;
  let store: Store;
  let shared: { store: Store; pool: pg.Pool } | null;
  try {
    host = await SandboxHost.open({
      config: config.sandbox,
      runDir: config.runDir,
      logger,
      privateFiles: registry.privateFiles(),
    });
    try {
      shared = await sharedState(config, logger, options);
      store = shared?.store ?? (await openStore({ dataDir, logger }));
    } catch (error) {
      await host.close();
      throw error;
    }
  } catch (error) {
    unlock();
    throw error;
  }
  const ownsStore = !options.shared;
  // The service only runs and reports; what is kept, audited and counted is wired here.
  const records = store.records;
  const audit = auditTrail(records, logger);
  const metrics: Metrics = new Metrics({
    queueDepth: () => service.scheduler.queuedCount,
    activeSandboxes: () => service.scheduler.activeCount,
    memoryReservedMb: () => service.scheduler.memoryReservedMb,
  });
  const egress = egressAccounting(audit, metrics);
  // Usage accounting and quotas (docs/usage.md): executions are counted by the store itself.
  const quotas = quotaEnforcer(config, store, audit);
  metrics.classify = userClassifier(config.usage.userClasses, store.keys);
  const sessionUsage = new SessionUsage({
    usage: store.usage,
    logger,
    sampleMs: config.usage.sampleMs,
    flushMs: config.usage.sessionFlushSeconds * 1000,
  });
  const service: ExecutionService = new ExecutionService({
    quotas,
    config,
    host,
    registry,
    store,
    logger,
    audit,
    metrics,
    egress,
    artifactUrl: executionArtifactUrl,
    clustered: shared !== null,
  });
  // In a cluster the worker records each claimed run itself, fenced (src/cluster/worker.ts).
  if (!shared) service.scheduler.onEvent(lifecycleRecorder(records, audit, logger));
  service.scheduler.onEvent((event) => metrics.observe(event));
  const sessions = new SessionManager(config, host, logger, {
    // A worker's sessions are written in the shared registry: API nodes route by it.
    registry: shared ? registryHook(store, config.cluster.workerId!) : undefined,
    audit,
    egress: sessionEgress(egress, sessionUsage),
    quotas,
    usage: sessionUsage,
    snapshots: new SnapshotStore(join(dataDir, "snapshots"), config.sessions),
    reserveMemory: (mb, what) => service.scheduler.reserveMemory(mb, what),
    artifacts: {
      limits: () => service.artifactLimits(),
      keep: (candidates, owner) =>
        service.keepArtifacts(candidates, owner, (name) => sessionArtifactUrl(owner.ownerId, name)),
    },
  });
  const stopPool = warmPool(config, host, registry, service, metrics, logger);
  const analyzer = new Analyzer(config, host, registry, { warm: true, metrics, logger });
  metrics.watchWarmAnalysers(() => analyzer.warmSandboxes().length);
  if (config.policy.mode !== "off") analyzer.prewarm();
  const notebooks = new NotebookService(
    config,
    sessions,
    analyzer,
    audit,
    join(dataDir, "notebooks"),
  );
  let cluster: ClusterNode | null = null;
  let internal = null as InternalServer | null;
  if (shared)
    try {
      const c = config.cluster;
      cluster = await startClusterNode({
        config,
        logger,
        ...shared,
        registry,
        metrics,
        local: {
          service,
          analyzer,
          sessionCount: () => sessions.count,
          endSessions: (reason) => sessions.endAll(reason),
        },
        workerUrl: options.workerUrl,
        // The listener API nodes forward session calls to, bound before the worker says where
        // it is. What it runs outside a session (MCP run_code) goes through the cluster's queue.
        listen: async (clusterService) => {
          internal = await startInternalServer(
            {
              config,
              logger,
              service: clusterService,
              registry,
              host,
              store,
              keys: store.keys,
              sessions,
              analyzer,
              notebooks,
            },
            {
              secret: c.secret!,
              host: c.internalHost,
              port: c.internalPort,
              advertiseUrl: c.advertiseUrl,
            },
          );
          return options.workerUrl ?? internal.url;
        },
      });
    } catch (error) {
      // Redis or PostgreSQL refused at start: release what was opened before saying so.
      await internal?.close();
      notebooks.close();
      await service.close(0);
      await analyzer.close();
      stopPool();
      await host.close();
      if (ownsStore) await store.close();
      unlock();
      throw error;
    }
  return Object.assign(service, {
    host,
    registry,
    store,
    config,
    sessions,
    analyzer,
    notebooks,
    cluster,
    async shutdown(deadlineMs = config.server.shutdownGracePeriod * 1000): Promise<void> {
      // A worker drains first: no claims, its runs finish and are recorded, its row goes.
      await cluster?.close(deadlineMs);
      notebooks.close();
      await Promise.all([service.close(deadlineMs), sessions.closeAll()]);
      await sessionUsage.close();
      await internal?.close();
      // After the runs that may still ask for an analysis; before the host goes.
      await analyzer.close();
      stopPool();
      await host.close();
      if (ownsStore) await store.close();
      unlock();
    },
  });
}

/** A cluster worker has one id for its row, its sessions' registry rows and its logs. */
function withWorkerId(config: Config): Config {
  if (!isClustered(config.cluster) || config.cluster.workerId) return config;
  return { ...config, cluster: { ...config.cluster, workerId: defaultWorkerId() } };
}

/** A session's egress is also counted in its usage. */
function sessionEgress(egress: EgressHook, usage: SessionUsage): EgressHook {
  return (policy, owner) => {
    const network = egress(policy, owner);
    const sessionId = owner.sessionId;
    if (!sessionId) return network;
    return {
      ...network,
      onEvent: (e) => {
        network.onEvent?.(e);
        if (e.decision === "allowed") usage.egress(sessionId, e.bytes, e.count);
      },
    };
  };
}

function registryHook(store: Store, workerId: string): SessionHooks["registry"] {
  return {
    workerId,
    register: (row) => store.sessions.register(row),
    ended: (id, reason, at) => store.sessions.ended(id, reason, at),
  };
}

/**
 * The warm pool in the service: its boxes count in the memory budget (held
 * as they are started, resized as their real use is read), it shows in
 * /metrics, and the configured languages start before the first request.
 * Returns what stops the budget's resizing (the host's close ends the boxes).
 */
function warmPool(
  config: Config,
  host: SandboxHost,
  registry: RuntimeRegistry,
  service: ExecutionService,
  metrics: Metrics,
  logger: Logger,
): () => void {
  const pool = host.pool;
  let release = (): void => undefined;
  let heldMb = 0;
  const resize = (): void => {
    const mb = Math.ceil(pool.memoryBytes() / MiB);
    if (mb === heldMb) return;
    release();
    release = mb > 0 ? service.scheduler.holdMemory(mb) : () => undefined;
    heldMb = mb;
  };
  pool.memoryGate = (bytes) => {
    resize();
    return service.scheduler.memoryFits(Math.ceil(bytes / MiB));
  };
  const resizing = setInterval(resize, 1000).unref();
  metrics.watchPool(() => pool.stats());
  for (const language of config.sandbox.pool.prewarm) {
    if (!registry.lookup(language)) {
      logger.warn({ language }, "sandbox.pool.prewarm names an unknown language");
      continue;
    }
    const cannot = (error: unknown): void =>
      logger.warn({ language, reason: (error as Error).message }, "cannot prewarm");
    try {
      const runtime = registry.resolve(language);
      runtimeTemplate(host, runtime, resolveLimits(config, {})).then(
        (template) => pool.prewarm(template),
        cannot,
      );
    } catch (error) {
      cannot(error);
    }
  }
  return () => {
    clearInterval(resizing);
    release();
  };
}
