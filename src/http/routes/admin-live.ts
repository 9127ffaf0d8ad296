/**
 * `GET /api/sandbox/live`: what runs now. Executions come from the store
 * (queued and running, on any node); their memory and CPU from the cgroups
 * where this node runs them (a cluster API node runs none: null). Sessions
 * are this node's, each measured from its own cgroup.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import type { SessionManager } from "../../sessions/manager.js";
import { ErrorResponses } from "../schemas.js";

/** Most executions listed (newest first); the counts below stay exact past it. */
const MAX_LISTED = 500;

const LiveSchema = z.object({
  executions: z.array(
    z.object({
      id: z.string(),
      userId: z.string(),
      language: z.string(),
      status: z.string(),
      createdAt: z.string(),
      startedAt: z.string().nullable(),
      memoryBytes: z.number().nullable(),
      cpuSeconds: z.number().nullable(),
    }),
  ),
  sessions: z.array(
    z.object({
      id: z.string(),
      userId: z.string(),
      language: z.string().nullable(),
      createdAt: z.string(),
      memoryBytes: z.number().nullable(),
      cpuSeconds: z.number().nullable(),
      state: z.string(),
    }),
  ),
  queueDepth: z.number(),
  utilizationPercent: z.number(),
  perUser: z.array(
    z.object({ userId: z.string(), running: z.number(), queued: z.number(), sessions: z.number() }),
  ),
});

export const liveRoutes: FastifyPluginAsyncZod<{
  service: ExecutionFrontend;
  sessions: SessionManager;
}> = async (app, { service, sessions }) => {
  app.get(
    "/api/sandbox/live",
    {
      config: { scope: "admin" },
      schema: {
        summary: "Running and queued executions and live sessions, with memory and CPU now",
        description: `At most ${MAX_LISTED} executions, newest first. memoryBytes/cpuSeconds are null where this node does not run the sandbox (a cluster API node).`,
        response: { 200: LiveSchema, ...ErrorResponses },
      },
    },
    async () => {
      const [records, metrics, live] = await Promise.all([
        service.records.list({ statuses: ["running", "queued"], limit: MAX_LISTED }),
        service.getSystemMetrics(),
        sessions.monitor(),
      ]);
      const running = records.filter((r) => r.status === "running").map((r) => r.id);
      const usage =
        (await service.sandboxUsage?.(running)) ??
        new Map<string, { memoryBytes: number; cpuTimeMs: number }>();
      const perUser = new Map<string, { running: number; queued: number; sessions: number }>();
      const of = (userId: string) => {
        let row = perUser.get(userId);
        if (!row) perUser.set(userId, (row = { running: 0, queued: 0, sessions: 0 }));
        return row;
      };
      for (const r of records) of(r.userId)[r.status === "running" ? "running" : "queued"]++;
      for (const s of live) of(s.userId).sessions++;
      return {
        executions: records.map((r) => {
          const now = usage.get(r.id);
          return {
            id: r.id,
            userId: r.userId,
            language: r.language,
            status: r.status,
            createdAt: r.createdAt,
            startedAt: r.startedAt,
            memoryBytes: now?.memoryBytes ?? null,
            cpuSeconds: now ? now.cpuTimeMs / 1000 : null,
          };
        }),
        sessions: live.map((s) => ({
          id: s.id,
          userId: s.userId,
          language: s.language,
          createdAt: s.createdAt,
          memoryBytes: s.memoryBytes,
          cpuSeconds: s.cpuTimeMs / 1000,
          state: s.state,
        })),
        queueDepth: metrics.queuedExecutions,
        utilizationPercent: metrics.utilizationPercent,
        perUser: [...perUser].map(([userId, c]) => ({ userId, ...c })),
      };
    },
  );
};
