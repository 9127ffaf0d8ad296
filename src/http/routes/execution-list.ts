/**
 * `GET /v1/executions`: the caller's executions (an admin key: everyone's, or
 * one user's), newest first, a bounded page at a time. Summaries only: the
 * output stays in the store (GET /v1/executions/:id has it).
 */
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { WardenError } from "../../errors.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import { blankResult, type ExecutionStatus } from "../../contract/result.js";
import type { ListedRecord } from "../../store/records.js";
import { hasScope } from "../auth.js";
import { decodeCursor, encodeCursor } from "../cursor.js";
import { ErrorResponses, ExecutionListSchema, ListExecutionsQuerySchema } from "../schemas.js";

const EXECUTION_ID = /^exec_[0-9A-Z]{26}$/;

/** The rows found, in the order their ids were asked. */
function inOrder(rows: readonly ListedRecord[], ids: readonly string[]): ListedRecord[] {
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

export function executionListRoute(app: FastifyInstance, service: ExecutionFrontend): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    "/v1/executions",
    {
      config: { scope: "execute" },
      schema: {
        summary: "List executions (own; admin: all), newest first",
        description:
          "Filters: `ids` (comma-separated, at most 100, in the order given), `status` (comma-separated), `from` / `to` (creation time, ISO 8601, from inclusive, to exclusive), `userId` (admin keys). Pages of `limit` (at most 100); follow `nextCursor`.",
        querystring: ListExecutionsQuerySchema,
        response: { 200: ExecutionListSchema, ...ErrorResponses },
      },
    },
    async (request) => {
      const actor = request.actor!;
      const q = request.query;
      const admin = hasScope(actor, "admin");
      if (q.userId !== undefined && q.userId !== actor.userId && !admin)
        throw new WardenError(
          "PERMISSION_DENIED",
          "userId: only admin keys may list another user's executions",
        );
      const ids = q.ids === undefined ? undefined : [...new Set(q.ids.split(","))];
      if (ids && q.cursor !== undefined)
        throw new WardenError(
          "INVALID_REQUEST",
          "cursor: not with ids (one answer holds them all)",
        );
      const rows = await service.records.list({
        userId: admin ? q.userId : actor.userId,
        ids,
        statuses: q.status?.split(",") as ExecutionStatus[] | undefined,
        fromMs: q.from === undefined ? undefined : Date.parse(q.from),
        toMs: q.to === undefined ? undefined : Date.parse(q.to),
        before: q.cursor === undefined ? undefined : decodeCursor(q.cursor, EXECUTION_ID),
        // One more tells whether there is a next page; by ids, all of them in one answer.
        limit: ids ? ids.length : q.limit + 1,
      });
      const page = ids ? inOrder(rows, ids) : rows.slice(0, q.limit);
      return {
        executions: page.map((r) => {
          const result = r.result ?? blankResult(r.id, r.status);
          return {
            id: r.id,
            status: r.status,
            success: result.success,
            exitCode: result.exitCode,
            signal: result.signal,
            truncated: result.truncated,
            error: result.error,
            metrics: result.metrics,
            userId: r.userId,
            language: r.language,
            source: r.source,
            createdAt: r.createdAt,
            startedAt: r.startedAt,
            finishedAt: r.finishedAt,
          };
        }),
        nextCursor:
          !ids && rows.length > q.limit
            ? encodeCursor({ createdAt: page.at(-1)!.createdAtMs, id: page.at(-1)!.id })
            : null,
      };
    },
  );
}
