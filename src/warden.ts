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
import { egressAccounting } from "./executions/egress-accounting.js";
import { Metrics } from "./executions/metrics.js";
import { lifecycleRecorder } from "./executions/recorder.js";
import { ExecutionService } from "./executions/service.js";
import { executionArtifactUrl, sessionArtifactUrl } from "./http/urls.js";
import { databaseUrlOf, openStore } from "./store/open.js";
import type { Store } from "./store/store.js";

export interface OpenWardenOptions extends LoadConfigOptions {
  /** A ready config; otherwise loaded from file, env and overrides. */
  config?: Config;
  /** @default a silent logger */
  logger?: Logger;
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
  const config = options.config ?? loadConfig(options);
  const logger = options.logger ?? (options.config ? silentLogger : createLogger(config.logLevel));
  const dataDir = resolve(config.dataDir);
  const unlock = lockDataDir(dataDir);
  const registry = new RuntimeRegistry(config.sandbox.searchPath, config.runtimes);
  let host: SandboxHost;
  let store: Store;
  try {
    host = await SandboxHost.open({
      config: config.sandbox,
      runDir: config.runDir,
      logger,
      privateFiles: registry.privateFiles(),
    });
    store = await openStore({ dataDir, databaseUrl: databaseUrlOf(config), logger }).catch(
      async (error: unknown) => {
        await host.close();
        throw error;
      },
    );
  } catch (error) {
    unlock();
    throw error;
  }
  // The service only runs and reports; what is kept, audited and counted is wired here.
  const records = store.records;
  const audit = auditTrail(records, logger);
  const metrics: Metrics = new Metrics({
    queueDepth: () => service.scheduler.queuedCount,
    activeSandboxes: () => service.scheduler.activeCount,
    memoryReservedMb: () => service.scheduler.memoryReservedMb,
  });
  const egress = egressAccounting(audit, metrics);
  const service: ExecutionService = new ExecutionService({
    config,
    host,
    registry,
    store,
    logger,
    audit,
    metrics,
    egress,
    artifactUrl: executionArtifactUrl,
  });
  service.scheduler.onEvent(lifecycleRecorder(records, audit, logger));
  service.scheduler.onEvent((event) => metrics.observe(event));
  const sessions = new SessionManager(config, host, logger, {
    audit,
    egress,
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
  return Object.assign(service, {
    host,
    registry,
    store,
    config,
    sessions,
    analyzer,
    notebooks,
    async shutdown(deadlineMs = config.server.shutdownGracePeriod * 1000): Promise<void> {
      notebooks.close();
      await Promise.all([service.close(deadlineMs), sessions.closeAll()]);
      // After the runs that may still ask for an analysis; before the host goes.
      await analyzer.close();
      stopPool();
      await host.close();
      await store.close();
      unlock();
    },
  });
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
    try {
      const runtime = registry.resolve(language);
      pool.prewarm(runtimeTemplate(host, runtime, resolveLimits(config, {})));
    } catch (error) {
      logger.warn({ language, reason: (error as Error).message }, "cannot prewarm");
    }
  }
  return () => {
    clearInterval(resizing);
    release();
  };
}
