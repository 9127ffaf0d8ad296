/**
 * Cluster mode (`cluster.*`; docs/cluster.md): which role this node plays and
 * where the shared state is. Both URLs unset = the single node (SQLite, the
 * in-process queue), exactly as without this section.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { z } from "zod";

export const CLUSTER_ROLES = ["all", "api", "worker"] as const;
export type ClusterRole = (typeof CLUSTER_ROLES)[number];

/** A worker id: it lands in SQL rows, Redis channel names and MCP session ids. */
const WORKER_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Default worker id: the host name (made id-safe) and a short random part, persisted nowhere. */
export function defaultWorkerId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, "-")
      .replace(/^[^A-Za-z0-9]+/, "")
      .slice(0, 48) || "worker";
  return `${host}-${randomBytes(4).toString("hex")}`;
}

const connectionUrl = (schemes: string[]) =>
  z
    .string()
    .max(2048)
    .refine(
      (url) => {
        try {
          return schemes.includes(new URL(url).protocol);
        } catch {
          return false;
        }
      },
      `must be a ${schemes.map((s) => s.replace(":", "://")).join(" or ")} URL`,
    );

export const ClusterConfigSchema = z
  .object({
    role: z
      .enum(CLUSTER_ROLES)
      .default("all")
      .describe(
        "all: API and sandboxes in one process (the single node, or both on shared state); api: HTTP only, no sandboxes, no root; worker: runs what the queue holds. api and worker need databaseUrl and redisUrl.",
      ),
    databaseUrl: connectionUrl(["postgres:", "postgresql:"])
      .optional()
      .describe(
        "PostgreSQL holding keys, records, audit, artifacts, the session registry and the queue. Unset (with redisUrl unset): SQLite in the data dir.",
      ),
    redisUrl: connectionUrl(["redis:", "rediss:"])
      .optional()
      .describe(
        "Redis for rate limits across API nodes and live events (output, kills, wake-ups). Nothing that must survive a Redis restart is kept there.",
      ),
    redisKeyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9:_-]{0,64}$/, "letters, digits, ':', '_' and '-' only, at most 64")
      .default("warden:")
      .describe("Prefix of every Redis key and channel, so clusters can share one Redis."),
    secret: z
      .string()
      .min(32, "must be at least 32 characters")
      .max(1024)
      .optional()
      .describe(
        "Shared secret signing the internal channel between API nodes and workers; required in cluster mode.",
      ),
    workerId: z
      .string()
      .regex(WORKER_ID, "letters, digits, '_' and '-', 1-64, starting with a letter or digit")
      .optional()
      .describe(
        "This worker's id. Default: the host name + '-' + a short random part, new each start",
      ),
    workerName: z
      .string()
      .max(200)
      .optional()
      .describe("A name for operators (admin API). Default: the worker id."),
    internalHost: z
      .string()
      .max(255)
      .default("127.0.0.1")
      .describe("Address of a worker's internal listener (signed API-node requests only)."),
    internalPort: z
      .number()
      .int()
      .min(0)
      .max(65_535)
      .default(0)
      .describe("Port of a worker's internal listener; 0 = any free port."),
    advertiseUrl: z
      .string()
      .url()
      .max(2048)
      .optional()
      .describe(
        "How API nodes reach this worker's internal listener. Default: http://internalHost:boundPort.",
      ),
    heartbeatMs: z
      .number()
      .int()
      .min(100)
      .max(60_000)
      .default(1000)
      .describe("How often a worker writes its heartbeat and load (ms)."),
    workerTimeoutMs: z
      .number()
      .int()
      .min(500)
      .max(600_000)
      .default(5000)
      .describe(
        "A worker silent this long (ms) is dead: its runs are retried or end WORKER_LOST, its sessions end.",
      ),
    maxConcurrentTotal: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .default(0)
      .describe(
        "Executions running at once across the cluster; 0 = no cap beyond the sum of the workers' maxConcurrentSandboxes.",
      ),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.workerTimeoutMs < 2 * c.heartbeatMs)
      ctx.addIssue({
        code: "custom",
        path: ["workerTimeoutMs"],
        message: "must be at least twice heartbeatMs (one late heartbeat must not kill a worker)",
      });
  });

export type ClusterConfig = z.infer<typeof ClusterConfigSchema>;

/** Whether this node runs on shared state (PostgreSQL + Redis). */
export function isClustered(c: ClusterConfig): boolean {
  return c.databaseUrl !== undefined || c.redisUrl !== undefined;
}

/**
 * Start-up problems of the cluster settings, each naming the setting and how
 * to give it; empty when the node can start. Checked before anything opens.
 */
export function clusterProblems(c: ClusterConfig): string[] {
  const problems: string[] = [];
  const clustered = isClustered(c) || c.role !== "all";
  if (!clustered) return problems;
  const why = c.role === "all" ? "cluster mode" : `role ${c.role}`;
  if (c.databaseUrl === undefined)
    problems.push(`cluster.databaseUrl ($WARDEN_DATABASE_URL) is required for ${why}`);
  if (c.redisUrl === undefined)
    problems.push(`cluster.redisUrl ($WARDEN_REDIS_URL) is required for ${why}`);
  if (c.secret === undefined)
    problems.push(
      `cluster.secret ($WARDEN_CLUSTER_SECRET, at least 32 characters) is required for ${why}`,
    );
  return problems;
}
