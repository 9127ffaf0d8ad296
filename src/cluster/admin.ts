/**
 * The cluster for its operators: `GET /api/sandbox/cluster` (admin scope)
 * lists workers with their load, health and version, the totals, and each
 * user's running executions and live sessions across workers; `/metrics`
 * gains cluster gauges. Everything comes from PostgreSQL (the workers' own
 * heartbeat rows, the queue, the session registry), so any API node answers
 * the same. Per-worker series are labelled by worker id and exist only for
 * workers that are not gone: one series per live worker, no more.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { Gauge, type Registry } from "prom-client";
import { z } from "zod";
import { ErrorResponses } from "../http/schemas.js";
import type { WorkerDirectory, WorkerRow } from "./worker-directory.js";

const WorkerViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  version: z.string(),
  url: z.string().describe("Where API nodes reach its internal listener."),
  state: z.enum(["active", "draining", "gone"]),
  alive: z.boolean().describe("Not gone, and its last heartbeat is within workerTimeoutMs."),
  heartbeatAgeMs: z.number().int(),
  running: z.number().int().describe("Executions running on it."),
  sessions: z.number().int().describe("Live sessions it holds."),
  memoryReservedMb: z.number().int(),
  memoryBudgetMb: z.number().int(),
  maxConcurrent: z.number().int().describe("Its maxConcurrentSandboxes."),
});

export const ClusterViewSchema = z.object({
  workers: z.array(WorkerViewSchema),
  totals: z.object({
    workers: z.object({ active: z.number(), draining: z.number(), gone: z.number() }),
    running: z.number().int(),
    sessions: z.number().int(),
    queued: z.number().int().describe("Executions waiting in the cluster queue."),
    maxConcurrent: z.number().int().describe("Sum over alive workers."),
    memoryReservedMb: z.number().int(),
    memoryBudgetMb: z.number().int(),
  }),
  users: z
    .array(z.object({ userId: z.string(), running: z.number(), sessions: z.number() }))
    .describe("Running executions and live sessions per user, across workers (busiest first)."),
});
export type ClusterView = z.infer<typeof ClusterViewSchema>;

/** At most this many users in the view (the busiest); the rest are in the totals. */
const MAX_USERS = 1000;

export async function clusterView(
  workers: WorkerDirectory,
  now = Date.now(),
): Promise<ClusterView> {
  const [rows, users, queued] = await Promise.all([
    workers.list(),
    workers.perUser(MAX_USERS),
    workers.queued(),
  ]);
  const alive = rows.filter((w) => workers.alive(w));
  const sum = (pick: (w: WorkerRow) => number) => alive.reduce((n, w) => n + pick(w), 0);
  const count = (state: WorkerRow["state"]) => rows.filter((w) => w.state === state).length;
  return {
    workers: rows.map((w) => ({
      id: w.id,
      name: w.name,
      version: w.version,
      url: w.url,
      state: w.state,
      alive: workers.alive(w),
      heartbeatAgeMs: Math.max(0, now - w.heartbeatAt),
      running: w.running,
      sessions: w.sessions,
      memoryReservedMb: w.memoryReservedMb,
      memoryBudgetMb: w.memoryBudgetMb,
      maxConcurrent: w.maxConcurrent,
    })),
    totals: {
      workers: { active: count("active"), draining: count("draining"), gone: count("gone") },
      running: sum((w) => w.running),
      sessions: sum((w) => w.sessions),
      queued,
      maxConcurrent: sum((w) => w.maxConcurrent),
      memoryReservedMb: sum((w) => w.memoryReservedMb),
      memoryBudgetMb: sum((w) => w.memoryBudgetMb),
    },
    users,
  };
}

export const clusterAdminRoutes: FastifyPluginAsyncZod<{ workers: WorkerDirectory }> = async (
  app,
  { workers },
) => {
  app.get(
    "/api/sandbox/cluster",
    {
      config: { scope: "admin" },
      schema: {
        summary: "The cluster: workers with load, health and version; totals; per-user counts",
        response: { 200: ClusterViewSchema, ...ErrorResponses },
      },
    },
    async () => clusterView(workers),
  );
};

/**
 * Cluster gauges on `registry`, read from PostgreSQL when scraped (one read
 * shared by all of them per scrape).
 */
export function clusterMetrics(registry: Registry, workers: WorkerDirectory): void {
  let last: { at: number; view: Promise<ClusterView> } | undefined;
  const view = (): Promise<ClusterView> => {
    if (!last || Date.now() - last.at > 1000) last = { at: Date.now(), view: clusterView(workers) };
    return last.view;
  };
  const gauge = (
    name: string,
    help: string,
    labelNames: string[],
    fill: (g: Gauge, v: ClusterView) => void,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const v = await view();
        this.reset();
        fill(this, v);
      },
    });
  gauge("warden_cluster_workers", "Workers by state", ["state"], (g, v) => {
    for (const [state, n] of Object.entries(v.totals.workers)) g.set({ state }, n);
  });
  gauge("warden_cluster_running", "Executions running across alive workers", [], (g, v) =>
    g.set(v.totals.running),
  );
  gauge("warden_cluster_queued", "Executions waiting in the cluster queue", [], (g, v) =>
    g.set(v.totals.queued),
  );
  const perWorker = (name: string, help: string, pick: (w: ClusterView["workers"][0]) => number) =>
    gauge(name, help, ["worker"], (g, v) => {
      for (const w of v.workers) if (w.state !== "gone") g.set({ worker: w.id }, pick(w));
    });
  perWorker("warden_cluster_worker_running", "Executions running on a worker", (w) => w.running);
  perWorker("warden_cluster_worker_sessions", "Live sessions on a worker", (w) => w.sessions);
  perWorker(
    "warden_cluster_worker_memory_reserved_mb",
    "Memory a worker has reserved (MB)",
    (w) => w.memoryReservedMb,
  );
  perWorker(
    "warden_cluster_worker_heartbeat_age_seconds",
    "Seconds since a worker's last heartbeat",
    (w) => w.heartbeatAgeMs / 1000,
  );
}
