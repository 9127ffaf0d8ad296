/**
 * The HTTP server: Fastify with zod schemas (validation and OpenAPI from the
 * same source), security headers, one error shape, connection limits and
 * timeouts (connections.ts), authentication and rate limits before any body
 * is read, bounded JSON bodies, then the routes.
 */
import { readFileSync } from "node:fs";
import cors from "@fastify/cors";
import helmet from "@fastify/helmet";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { LogController, type FastifyInstance } from "fastify";
import {
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import type { Logger } from "../audit/logger.js";
import type { Config } from "../config/schema.js";
import type { ExecutionFrontend } from "../executions/frontend.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { KeyStore, Store } from "../store/store.js";
import { ulid } from "../util/ids.js";
import { packageVersion } from "../util/version.js";
import { Gate, type LimiterFactory } from "./auth.js";
import { clientErrorHandler, serverFactory } from "./connections.js";
import { boundedJsonParser } from "./json-body.js";
import { RefusalLog } from "./refusals.js";
import { sendError, toWardenError } from "./errors.js";
import { openapiOptions } from "./openapi.js";
import { adminRoutes } from "./routes/admin.js";
import { executionRoutes } from "./routes/executions.js";
import { testSuiteRoutes } from "./routes/test-suites.js";
import { healthRoutes } from "./routes/health.js";
import { mcpRoutes } from "./routes/mcp.js";
import { pistonRoutes } from "./routes/piston.js";
import { pistonConnectRoutes } from "./routes/piston-connect.js";
import { previewRoutes } from "./routes/previews.js";
import { sessionCommandRoutes } from "./routes/session-commands.js";
import { sessionRoutes } from "./routes/sessions.js";
import { sessionStateRoutes } from "./routes/session-state.js";
import { usageRoutes } from "./routes/usage.js";
import type { SessionManager } from "../sessions/manager.js";
import type { NotebookService } from "../notebooks/service.js";
import type { Analyzer } from "../policy/analyzer.js";
import { notebookRoutes } from "./routes/notebooks.js";
import { environmentRoutes } from "./routes/environments.js";
import { InternalGate } from "../cluster/internal-gate.js";
import type { ClusterRouting } from "../cluster/forward.js";
import type { Webhooks } from "../webhooks/types.js";
import { webhookRoutes } from "./routes/webhooks.js";
import { DashboardSessions } from "./dashboard-session.js";
import { dashboardRoutes } from "./routes/dashboard.js";
import { auditRoutes } from "./routes/admin-audit.js";
import { liveRoutes } from "./routes/admin-live.js";
import { judge0Routes } from "./judge0/routes.js";
import { e2bRoutes } from "./e2b/index.js";
import { planeTokens, SandboxRecords } from "./e2b/plane.js";
import { e2bError } from "./e2b/api.js";
import { e2bHostRewrite } from "./e2b/host-routing.js";

export interface ServerDeps {
  config: Config;
  logger: Logger;
  service: ExecutionFrontend;
  registry: RuntimeRegistry;
  /**
   * What /readyz asks whether code can run here: the sandbox host's isolation
   * self-test, or on a cluster API node whether an active worker answers.
   */
  host: Pick<SandboxHost, "selfTest">;
  /** The store (its keys are `keys`); /readyz asks it whether it can write. */
  store: Store;
  keys: KeyStore;
  sessions: SessionManager;
  analyzer: Analyzer;
  notebooks: NotebookService;
  /**
   * `public` (default): user keys, rate limits, every route. `internal`: a
   * worker's internal channel (src/cluster/internal-server.ts): only requests
   * signed by an API node, acting for the principal they carry; no admin or
   * execution routes.
   */
  mode?: { kind: "public" } | { kind: "internal"; secret: string };
  /**
   * False on a cluster API node: it has no sandbox to analyse code in, so the
   * key's policy travels with the job and the worker analyses before it runs.
   * @default true
   */
  analyseBeforeQueue?: boolean;
  /** Cluster API node: rate limits shared in Redis (src/cluster/rate-limit-redis.ts). */
  limiters?: LimiterFactory;
  /** Cluster API node: forwards session-bound calls to workers (src/cluster/forward.ts). */
  routing?: ClusterRouting;
  /** Callbacks (src/webhooks/service.ts); absent: `callbackUrl` is refused. */
  webhooks?: Webhooks | undefined;
}

// The return type is inferred: a Fastify instance with the zod type provider.
export async function buildServer(deps: ServerDeps) {
  const { config, service } = deps;
  const server = config.server;
  const internal = deps.mode?.kind === "internal" ? deps.mode : null;
  // Every internal request comes from a few API nodes: per-address caps would throttle them.
  const limits = internal
    ? { ...server.connections, maxConnectionsPerIp: server.connections.maxConnections }
    : server.connections;
  const log = deps.logger.child({ component: "http" });
  const refusals = new RefusalLog((e) => service.audit(e), limits);
  const warn = (ip: string, message: string): void => log.warn({ ip }, message);
  const tls = server.tls
    ? { cert: readFileSync(server.tls.certFile), key: readFileSync(server.tls.keyFile) }
    : undefined;
  const e2bServed = config.e2b.enabled && !deps.routing && !internal;
  const app = Fastify({
    loggerInstance: log,
    // One line per request comes from our onResponse hook instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: server.bodyLimitBytes,
    trustProxy: server.trustProxy.length > 0 ? server.trustProxy : false,
    genReqId: () => `req_${ulid()}`,
    requestIdHeader: false,
    // Timeouts and connection caps live on the server we build (connections.ts).
    serverFactory: serverFactory(limits, refusals, warn, tls),
    clientErrorHandler: clientErrorHandler(limits, refusals, warn),
    // Bad percent-encoding or an overlong path segment: our error shape, the path not echoed.
    frameworkErrors: (error, request, reply) =>
      void (e2bServed && request.url.startsWith("/e2b/")
        ? e2bError(error, request, reply)
        : sendError(reply, request, error)),
    // E2B's getHost(port) names (<port>-<sandbox>.<domain>) reach the sandbox's port.
    ...(e2bServed ? { rewriteUrl: e2bHostRewrite(config.e2b) } : {}),
    // Tells Fastify the scheme (for its address line); the server itself comes from serverFactory.
    ...(tls ? { https: tls } : {}),
  }).withTypeProvider<ZodTypeProvider>();
  app.addHook("onClose", async () => refusals.close());
  const json = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser(
    "application/json",
    { parseAs: "string" },
    boundedJsonParser(json, { maxDepth: limits.maxJsonDepth, maxKeys: limits.maxJsonKeys }),
  );
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest("actor", null);

  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        // The API docs page (swagger-ui) needs inline styles; nothing else is served.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", "data:"],
        frameAncestors: ["'none'"],
        // Only with TLS: over plain HTTP it would send the docs page's assets to an
        // https:// that does not exist (helmet adds it by default).
        upgradeInsecureRequests: server.tls ? [] : null,
      },
    },
    frameguard: { action: "deny" },
    referrerPolicy: { policy: "no-referrer" },
    hsts: server.tls ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  });
  if (server.corsOrigins.length > 0) await app.register(cors, { origin: server.corsOrigins });

  app.addHook("onSend", async (request, reply) => {
    void reply.header("X-Request-Id", request.id);
    void reply.header(
      "Permissions-Policy",
      "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
  });
  const dashboard =
    !internal && config.dashboard.enabled
      ? new DashboardSessions(() => deps.store.dashboardSessions, deps.keys, config.dashboard)
      : null;
  const gate = internal
    ? new InternalGate(internal.secret, service, refusals)
    : new Gate(deps.keys, service, server, refusals, deps.limiters, dashboard?.authenticate);
  app.addHook("onRequest", gate.check);
  app.addHook("onResponse", async (request, reply) => {
    // Refused requests (4xx) are logged only while this client has log budget left.
    const status = reply.statusCode;
    if (status >= 400 && status < 500 && !refusals.shouldLog(request.ip, "refused_request")) return;
    // The request's logger is a child of `log`, at its level.
    if (!log.isLevelEnabled("info")) return;
    request.log.info(
      {
        requestId: request.id,
        method: request.method,
        route: request.routeOptions.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      "request",
    );
  });

  app.setErrorHandler(async (error, request, reply) => {
    const e = toWardenError(error);
    if (e.code === "INVALID_REQUEST") {
      service.metrics.reject("invalid_request");
      refusals.record(request.ip, {
        userId: request.actor?.userId,
        level: "warn",
        event: "validation_failed",
        message: e.message,
        data: { route: request.routeOptions.url, requestId: request.id, ip: request.ip },
      });
    }
    await sendError(reply, request, error);
  });
  app.setNotFoundHandler(async (request, reply) => {
    await reply.status(404).send({
      error: {
        code: "NOT_FOUND",
        message: `no route ${request.method} ${request.url.split("?")[0]}`,
        requestId: request.id,
      },
    });
  });

  await app.register(swagger, openapiOptions(packageVersion()));
  // swagger-ui's own routes are public documentation.
  app.addHook("onRoute", (route) => {
    if (route.url.startsWith("/docs")) route.config = { ...(route.config ?? {}), scope: "public" };
  });
  await app.register(swaggerUi, {
    routePrefix: "/docs",
    uiConfig: { deepLinking: false },
    staticCSP: true,
  });
  app.get("/openapi.json", { config: { scope: "public" }, schema: { hide: true } }, async () =>
    app.swagger(),
  );

  // After swagger (its routes show in OpenAPI), before the routes it forwards.
  if (deps.routing) await deps.routing.install(app as unknown as FastifyInstance);
  await app.register(healthRoutes, { service, host: deps.host, store: deps.store });
  const queueAnalyzer = deps.analyseBeforeQueue === false ? null : deps.analyzer;
  // Not on an internal listener: executions go through the queue, keys stay on API nodes.
  if (!internal) {
    /** What every route that queues code needs. */
    const run = { service, registry: deps.registry, config, analyzer: queueAnalyzer };
    await app.register(executionRoutes, { ...run, webhooks: deps.webhooks });
    await app.register(webhookRoutes, { store: deps.store });
    await app.register(testSuiteRoutes, { service, config });
    await app.register(adminRoutes, { service, sessions: deps.sessions, keys: deps.keys, config });
    await app.register(usageRoutes, { store: deps.store, config, service });
    await app.register(auditRoutes, { service, maxExportRows: config.dashboard.maxExportRows });
    await app.register(liveRoutes, { service, sessions: deps.sessions });
    if (dashboard)
      await app.register(dashboardRoutes, {
        config: config.dashboard,
        sessions: dashboard,
        service,
        refusals,
        limiters: deps.limiters,
      });
    await app.register(pistonRoutes, run);
    await app.register(pistonConnectRoutes, run);
    const judge0Deps = { ...run, store: deps.store, webhooks: deps.webhooks };
    if (config.judge0.enabled)
      await app.register(judge0Routes, { ...judge0Deps, prefix: "/judge0" });
    if (config.judge0.enabled && config.judge0.atRoot)
      await app.register(judge0Routes, { ...judge0Deps, hidden: true });
  }
  await app.register(sessionRoutes, {
    sessions: deps.sessions,
    service,
    maxFileBytes: config.maxFileBytes,
  });
  await app.register(sessionCommandRoutes, {
    sessions: deps.sessions,
    analyzer: deps.analyzer,
    service,
    config,
  });
  await app.register(sessionStateRoutes, { sessions: deps.sessions });
  // E2B's SDKs drive sessions held here: a single node (cluster API nodes do not serve it yet).
  if (e2bServed)
    await app.register(e2bRoutes, {
      sessions: deps.sessions,
      config,
      tokens: planeTokens(config),
      analyzer: deps.analyzer,
      service,
      sandboxes: new SandboxRecords({ sessions: deps.sessions, config, analyzer: deps.analyzer }),
      prefix: "/e2b",
    });
  await app.register(previewRoutes, {
    sessions: deps.sessions,
    gate,
    relay: deps.routing?.relayUpgrade,
  });
  // The internal channel's Host is the worker's address: the API node checked the user's.
  await app.register(mcpRoutes, { ...deps, refusals, hostChecked: internal !== null });
  await app.register(notebookRoutes, {
    notebooks: deps.notebooks,
    analyzer: deps.analyzer,
    config,
  });
  await app.register(environmentRoutes, { dataDir: config.dataDir });
  return app;
}
