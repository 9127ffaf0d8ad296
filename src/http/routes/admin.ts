/** The spec's admin monitoring API, at exactly its paths; admin scope only. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import type { SessionManager } from "../../sessions/manager.js";
import { WardenError } from "../../errors.js";
import type { Config } from "../../config/schema.js";
import { USER_ID_PATTERN } from "../../store/keys.js";
import type { KeyStore } from "../../store/store.js";
import { keyRoutes } from "./admin-keys.js";
import { Params } from "./sessions.js";
import { emptyBodyIsNoBody } from "../empty-body.js";
import { ErrorResponses, IdParamsSchema } from "../schemas.js";
import { SystemMetricsSchema, UserMetricsSchema } from "../../contract/metrics.js";

const errors = ErrorResponses;
const ExecutionIdParams = z.object({ executionId: IdParamsSchema.shape.id });

export const adminRoutes: FastifyPluginAsyncZod<{
  service: ExecutionFrontend;
  sessions: SessionManager;
  keys: KeyStore;
  config: Config;
}> = async (app, { service, sessions, keys, config }) => {
  keyRoutes(app, { service, keys, config });

  app.get(
    "/api/sandbox/sessions",
    {
      config: { scope: "admin" },
      schema: {
        summary: "Every live session, with its memory and CPU now (from its cgroup)",
        response: {
          200: z.array(
            z.object({
              id: z.string(),
              userId: z.string(),
              createdAt: z.string(),
              expiresAt: z.string(),
              lastUsedAt: z.string(),
              memoryBytes: z.number(),
              cpuTimeMs: z.number(),
              limits: z.object({
                memoryMb: z.number(),
                cpuPercent: z.number(),
                diskMb: z.number(),
                pids: z.number(),
              }),
            }),
          ),
          ...errors,
        },
      },
    },
    async () => sessions.monitor(),
  );

  app.delete(
    "/api/sandbox/sessions/:id",
    {
      config: { scope: "admin" },
      preParsing: emptyBodyIsNoBody,
      schema: {
        summary: "End any session",
        params: Params,
        response: { 200: z.object({ success: z.boolean() }), ...errors },
      },
    },
    async (request) => {
      await sessions.destroy(
        request.params.id,
        "",
        `ended by admin ${request.actor!.userId}`,
        true,
      );
      return { success: true };
    },
  );

  app.get(
    "/api/sandbox/metrics",
    {
      config: { scope: "admin" },
      schema: {
        summary: "System-wide sandbox metrics",
        response: {
          200: SystemMetricsSchema,
          ...errors,
        },
      },
    },
    async () => service.getSystemMetrics(),
  );

  app.get(
    "/api/sandbox/metrics/:userId",
    {
      config: { scope: "admin" },
      schema: {
        summary: "One user's sandbox metrics",
        params: z.object({ userId: z.string().regex(USER_ID_PATTERN) }),
        response: {
          200: UserMetricsSchema,
          ...errors,
        },
      },
    },
    async (request) => service.getUserMetrics(request.params.userId),
  );

  app.get(
    "/api/sandbox/logs/:executionId",
    {
      config: { scope: "admin" },
      schema: {
        summary: "The audit trail of one execution",
        params: ExecutionIdParams,
        response: {
          200: z.array(
            z.object({
              timestamp: z.string(),
              executionId: z.string().nullable(),
              userId: z.string().nullable(),
              level: z.string(),
              event: z.string(),
              message: z.string(),
              data: z.record(z.string(), z.unknown()).optional(),
            }),
          ),
          ...errors,
        },
      },
    },
    async (request) => {
      const logs = await service.getLogs(request.params.executionId);
      if (logs.length === 0 && !(await service.getRecord(request.params.executionId, false)))
        throw new WardenError("NOT_FOUND", `execution ${request.params.executionId} not found`);
      return logs;
    },
  );

  app.post(
    "/api/sandbox/kill/:executionId",
    {
      config: { scope: "admin" },
      preParsing: emptyBodyIsNoBody,
      schema: {
        summary: "Kill any execution",
        params: ExecutionIdParams,
        response: { 200: z.object({ success: z.boolean() }), ...errors },
      },
    },
    async (request) => {
      const id = request.params.executionId;
      if (!(await service.getRecord(id, false)))
        throw new WardenError("NOT_FOUND", `execution ${id} not found`);
      return {
        success: await service.killExecution(id, `killed by admin ${request.actor!.userId}`),
      };
    },
  );
};
