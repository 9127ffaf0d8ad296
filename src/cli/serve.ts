/**
 * `warden serve`: the multi-tenant service on the embedded defaults (SQLite
 * in the data dir, in-process queue), or one node of a cluster by its role
 * (`api`, `worker`, `all` on PostgreSQL and Redis). This is the one place
 * that handles SIGTERM and SIGINT: stop intake, let running executions finish
 * up to the grace period, kill the rest, record every final state, exit.
 */
import { createServer } from "node:net";
import { resolve } from "node:path";
import { ENV } from "../config/env.js";
import type { Logger } from "../audit/logger.js";
import { apiNodeParts } from "../cluster/api-wiring.js";
import { clusterProblems } from "../config/cluster-config.js";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import type { ExecutionFrontend } from "../executions/frontend.js";
import { judge0Callback } from "../http/judge0/callback.js";
import { buildServer, type ServerDeps } from "../http/server.js";
import type { NotebookService } from "../notebooks/service.js";
import type { Analyzer } from "../policy/analyzer.js";
import type { SessionManager } from "../sessions/manager.js";
import type { PgStore } from "../store/pg/store.js";
import { openApiNode, openWarden } from "../warden.js";
import { SCOPES } from "../store/keys.js";
import { createContext, type GlobalOptions } from "./context.js";
import { WebhookService } from "../webhooks/service.js";
import { wardenCallback } from "../webhooks/render.js";
import { processLimitProblems, readHostCaps } from "./process-limits.js";

export interface ServeOptions extends GlobalOptions {
  port?: string;
  host?: string;
  /** all | api | worker (cluster.role, $WARDEN_ROLE). */
  role?: string;
}

/**
 * Why host:port cannot be listened on, or null. Checked before the data dir
 * is opened and before an admin key is minted: a second `warden serve` on a
 * busy port must not print a key that works nowhere.
 */
function portProblem(host: string, port: number): Promise<string | null> {
  if (port === 0) return Promise.resolve(null);
  return new Promise((resolveProblem) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => {
      const reasons: Record<string, string> = {
        EADDRINUSE: `port ${port} on ${host} is already in use (another warden serve?)`,
        EACCES: `no permission to listen on port ${port}`,
        EADDRNOTAVAIL: `${host} is not an address of this machine`,
      };
      resolveProblem(
        reasons[error.code ?? ""] ?? `cannot listen on ${host}:${port}: ${error.message}`,
      );
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolveProblem(null)));
  });
}

export async function serveCommand(options: ServeOptions): Promise<number> {
  const overrides: Record<string, unknown> = {};
  if (options.port !== undefined) overrides["server.port"] = Number(options.port);
  if (options.host !== undefined) overrides["server.host"] = options.host;
  if (options.role !== undefined) overrides["cluster.role"] = options.role;
  const ctx = createContext({ ...options, logLevel: options.logLevel }, "info", overrides);
  const { config, logger } = ctx;
  // A half-configured cluster node says what is missing before it opens anything.
  const problems = clusterProblems(config.cluster);
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`warden: ${p}\n`);
    return 1;
  }
  if (config.cluster.role === "worker") return serveWorker(config, logger);
  const dataDir = resolve(config.dataDir);
  const problem = await portProblem(config.server.host, config.server.port);
  if (problem) {
    process.stderr.write(
      `warden: ${problem}: free it, or choose another port (--port, $WARDEN_PORT or server.port)\n`,
    );
    return 1;
  }
  const node = await openNode(config, logger);
  // Every node that serves the public API delivers callbacks, from the shared store.
  const webhooks = new WebhookService({
    config,
    store: node.deps.store,
    logger,
    audit: (event) => node.deps.service.audit(event),
    // Judge0 callbacks carry Judge0's submission shape (src/http/judge0/callback.ts).
    renderers: { warden: wardenCallback, judge0: judge0Callback },
  }).start();
  const app = await buildServer({ ...node.deps, webhooks });
  const address = await app.listen({ host: config.server.host, port: config.server.port });
  // Only once the port is ours: a key is printed for a server that runs.
  const keys = node.deps.keys;
  const envToken = process.env[ENV.adminToken];
  if (envToken) await keys.ensureEnvAdmin(envToken);
  else if (!(await keys.hasAdmin())) {
    const { token } = await keys.create({
      name: "admin (first start)",
      scopes: [...SCOPES],
      userId: "admin",
    });
    process.stderr.write(
      `\n  Warden admin key (shown once; store it now):\n\n    ${token}\n\n  Make more with: warden keys create --name NAME --scopes execute\n\n`,
    );
  }
  logger.info({ address, dataDir, role: config.cluster.role, ...node.facts }, "warden serving");

  return untilSignal(config, logger, async (graceMs) => {
    const closing = app.close(); // stop accepting; in-flight requests finish with their executions
    await webhooks.close(); // attempts under way end (each has its deadline); the rest stay pending
    await node.shutdown(graceMs);
    // Every execution has ended; keep-alive sockets that went idle since close() began go too.
    app.server.closeIdleConnections();
    const stragglers = setTimeout(() => app.server.closeAllConnections(), 2000);
    await closing;
    clearTimeout(stragglers);
  });
}

/**
 * What the public server of this node is built from: the single node's own
 * parts; on a cluster's `all` node the same with the cluster's queue in front;
 * on an `api` node the cluster's queue, the store and forwarding to workers,
 * with no sandbox host at all.
 */
async function openNode(
  config: Config,
  logger: Logger,
): Promise<{
  deps: ServerDeps;
  facts: Record<string, unknown>;
  shutdown(graceMs: number): Promise<void>;
}> {
  if (config.cluster.role === "api") {
    const api = await openApiNode({ config, logger });
    const parts = apiNodeParts({
      ...api,
      logger,
      redis: api.cluster.redis,
      metrics: api.service.metrics,
    });
    // Sessions, notebooks, MCP and analysis live on workers: every call for them is forwarded.
    const elsewhere = onWorkers<SessionManager & NotebookService & Analyzer>();
    return {
      deps: {
        config,
        logger,
        service: api.service,
        registry: api.registry,
        host: parts.readiness,
        store: api.store,
        keys: api.store.keys,
        sessions: elsewhere,
        notebooks: elsewhere,
        analyzer: elsewhere,
        analyseBeforeQueue: false,
        routing: parts.routing,
        limiters: parts.limiters,
      },
      facts: {},
      shutdown: (graceMs) => api.shutdown(graceMs),
    };
  }
  const warden = await openWarden({ config, logger });
  const base = {
    ...warden,
    config,
    logger,
    service: warden as ExecutionFrontend,
    keys: warden.store.keys,
  };
  const facts = { cgroups: warden.host.cgroupLayout.mode };
  if (!warden.cluster)
    return { deps: base, facts, shutdown: (graceMs) => warden.shutdown(graceMs) };
  const parts = apiNodeParts({
    config,
    logger,
    store: warden.store,
    pool: (warden.store as PgStore).pool,
    redis: warden.cluster.redis,
    metrics: warden.metrics,
  });
  return {
    deps: {
      ...base,
      service: warden.cluster.service,
      routing: parts.routing,
      limiters: parts.limiters,
    },
    facts: { ...facts, worker: config.cluster.workerId },
    shutdown: (graceMs) => warden.shutdown(graceMs),
  };
}

/**
 * A worker serves no public port: only its internal listener, which takes
 * requests signed by API nodes, and the queue it claims from.
 */
async function serveWorker(config: Config, logger: Logger): Promise<number> {
  for (const problem of processLimitProblems(config, readHostCaps())) logger.warn(problem);
  const warden = await openWarden({ config, logger });
  logger.info(
    {
      role: "worker",
      worker: config.cluster.workerId ?? warden.cluster?.worker?.id,
      internal: config.cluster.advertiseUrl,
      cgroups: warden.host.cgroupLayout.mode,
    },
    "warden worker serving",
  );
  return untilSignal(config, logger, (graceMs) => warden.shutdown(graceMs));
}

/** A stand-in for the parts an API node does not have: every call for them is forwarded first. */
function onWorkers<T extends object>(): T {
  return new Proxy({} as T, {
    get: (_target, name) => {
      if (name === "then" || typeof name === "symbol") return undefined;
      throw new WardenError(
        "INTERNAL",
        `an API node has no ${String(name)}: this call belongs on a worker`,
      );
    },
  });
}

/** SIGTERM and SIGINT: stop intake, let running work finish up to the grace period, exit 0. */
function untilSignal(
  config: Config,
  logger: Logger,
  stop: (graceMs: number) => Promise<void>,
): Promise<number> {
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, graceSeconds: config.server.shutdownGracePeriod }, "shutting down");
      void stop(config.server.shutdownGracePeriod * 1000).then(() => {
        logger.info("stopped");
        resolveExit(0);
      });
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
  });
}
