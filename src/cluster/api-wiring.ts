/**
 * What turns a public HTTP server into a cluster API node's: session calls
 * forwarded to the worker that holds them (placement for new ones), the
 * admin cluster view and its gauges, rate limits shared in Redis, and a
 * readiness check that asks whether any worker is active.
 */
import type pg from "pg";
import type { Logger } from "../audit/logger.js";
import type { Config } from "../config/schema.js";
import type { Metrics } from "../executions/metrics.js";
import type { LimiterFactory } from "../http/auth.js";
import type { Store } from "../store/store.js";
import { clusterAdminRoutes, clusterMetrics } from "./admin.js";
import { clusterRouting, type ClusterRouting } from "./forward.js";
import { Placement } from "./placement.js";
import { redisLimiters } from "./rate-limit-redis.js";
import type { ClusterRedis } from "./redis.js";
import { WorkerDirectory } from "./worker-directory.js";

/** Slack over the largest body a route takes: the worker holds the exact limits. */
const BODY_SLACK_BYTES = 64 * 1024;

export interface ApiNodeParts {
  routing: ClusterRouting;
  limiters: LimiterFactory;
  /** /readyz on an API node: code can run when some worker is active. */
  readiness: { selfTest(): Promise<string | null> };
}

export function apiNodeParts(o: {
  config: Config;
  logger: Logger;
  store: Store;
  pool: pg.Pool;
  redis: ClusterRedis;
  metrics: Metrics;
}): ApiNodeParts {
  const { config } = o;
  const c = config.cluster;
  const workers = new WorkerDirectory(o.pool, c.workerTimeoutMs);
  const placement = new Placement(workers, config, (userId) =>
    o.store.sessions.liveCountOf(userId),
  );
  const routing = clusterRouting({
    secret: c.secret!,
    workers,
    registry: o.store.sessions,
    placement,
    maxBodyBytes:
      Math.max(config.server.bodyLimitBytes, config.maxFileBytes, config.notebooks.maxBytes) +
      BODY_SLACK_BYTES,
    // A session's /run may wait for its longest command before the worker answers.
    headersTimeoutMs: (config.maxSessionTimeout + 60) * 1000,
    routes: async (app) => void (await app.register(clusterAdminRoutes, { workers })),
  });
  clusterMetrics(o.metrics.registry, workers);
  return {
    routing,
    limiters: redisLimiters(o.redis.cmd, o.logger, `${c.redisKeyPrefix}rl:`),
    readiness: {
      selfTest: async () =>
        (await workers.active()).length > 0 ? null : "no active worker is answering heartbeats",
    },
  };
}
