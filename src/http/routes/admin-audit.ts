/**
 * The audit trail for admins: a filtered, paged search (newest first) with
 * bounded CSV/NDJSON export, and counts per event over time (the dashboard's
 * security view). Both read the store, so in a cluster they see every node.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { WardenError } from "../../errors.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import type { StoredAuditEvent } from "../../store/audit-search.js";
import { USER_ID_PATTERN } from "../../store/keys.js";
import type { EventLevel } from "../../store/records.js";
import { sendExport } from "../audit-export.js";
import { ErrorResponses } from "../schemas.js";

const LEVELS = ["debug", "info", "warn", "error"] as const;
const EVENT_NAME = /^[a-z][a-z0-9_]{0,63}$/;
const PAGE = 1000;
const BUCKETS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
const MAX_BUCKETS = 1000;
/** The range when `from` is not given: an hour of minutes, a day of hours, 30 days. */
const DEFAULT_BUCKETS = { minute: 60, hour: 24, day: 30 } as const;

const list = (what: string, ok: (s: string) => boolean, max: number) =>
  z
    .string()
    .max(max * 65)
    .refine((s) => s.split(",").length <= max && s.split(",").every(ok), {
      message: `${what}: at most ${max}, comma-separated`,
    });

const eventsParam = list("event", (s) => EVENT_NAME.test(s), 50)
  .optional()
  .describe("Only these event names (comma-separated), e.g. network_denied,auth_failure.");

const AuditQuerySchema = z
  .object({
    event: eventsParam,
    userId: z.string().regex(USER_ID_PATTERN, "userId: not a user id").optional(),
    level: list("level", (s) => (LEVELS as readonly string[]).includes(s), 4)
      .optional()
      .describe("Only these levels (comma-separated): debug, info, warn, error."),
    executionId: z
      .string()
      .regex(/^exec_[0-9A-Z]{26}$/, "executionId: not an execution id")
      .optional(),
    from: z.iso.datetime({ offset: true }).optional().describe("At or after (ISO 8601)."),
    to: z.iso.datetime({ offset: true }).optional().describe("Before (ISO 8601)."),
    limit: z.coerce.number().int().min(1).max(500).default(100).describe("Page size (1-500)."),
    cursor: z
      .string()
      .regex(/^\d{1,15}$/, "cursor: not a nextCursor of this API")
      .optional(),
    format: z
      .enum(["json", "csv", "ndjson"])
      .default("json")
      .describe("csv and ndjson export up to dashboard.maxExportRows events, ignoring `limit`."),
  })
  .strict();

const AuditEventSchema = z.object({
  id: z.number(),
  timestamp: z.string(),
  executionId: z.string().nullable(),
  userId: z.string().nullable(),
  level: z.string(),
  event: z.string(),
  message: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});

const CountsQuerySchema = z
  .object({
    from: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("Default: 60 minutes, 24 hours or 30 days before `to`."),
    to: z.iso.datetime({ offset: true }).optional().describe("Default: now."),
    bucket: z.enum(["minute", "hour", "day"]).default("hour"),
    event: eventsParam,
  })
  .strict();

const split = (s: string | undefined): string[] | undefined => s?.split(",");

export const auditRoutes: FastifyPluginAsyncZod<{
  service: ExecutionFrontend;
  maxExportRows: number;
}> = async (app, { service, maxExportRows }) => {
  app.get(
    "/api/sandbox/audit",
    {
      config: { scope: "admin" },
      schema: {
        summary: "Search the audit trail (newest first), or export it",
        description: `Filters combine with AND. Pages of \`limit\`; follow \`nextCursor\`. \`format=csv|ndjson\` answers a file of at most dashboard.maxExportRows events (header X-Export-Truncated when there were more); CSV cells that could start a spreadsheet formula are prefixed with '.`,
        querystring: AuditQuerySchema,
        response: {
          200: z.object({ events: z.array(AuditEventSchema), nextCursor: z.string().nullable() }),
          ...ErrorResponses,
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const filter = {
        events: split(q.event),
        levels: split(q.level) as EventLevel[] | undefined,
        userId: q.userId,
        executionId: q.executionId,
        fromMs: q.from === undefined ? undefined : Date.parse(q.from),
        toMs: q.to === undefined ? undefined : Date.parse(q.to),
        beforeId: q.cursor === undefined ? undefined : Number(q.cursor),
      };
      if (q.format === "json") {
        const rows = await service.records.searchEvents({ ...filter, limit: q.limit + 1 });
        const page = rows.slice(0, q.limit);
        const last = page[page.length - 1];
        return { events: page, nextCursor: rows.length > q.limit && last ? String(last.id) : null };
      }
      // Export: pages of the store's size until the bound, never more in memory than that.
      const events: StoredAuditEvent[] = [];
      let beforeId = filter.beforeId;
      let more = true;
      while (more && events.length < maxExportRows) {
        const want = Math.min(PAGE, maxExportRows - events.length);
        const rows = await service.records.searchEvents({ ...filter, beforeId, limit: want + 1 });
        events.push(...rows.slice(0, want));
        more = rows.length > want;
        beforeId = events[events.length - 1]?.id;
      }
      return sendExport(reply, q.format, events, more);
    },
  );

  app.get(
    "/api/sandbox/audit/counts",
    {
      config: { scope: "admin" },
      schema: {
        summary: "How many audit events of each name per time bucket",
        description: `At most ${MAX_BUCKETS} buckets per request. Counts rows: a network_denied row may stand for several refusals (its data.count).`,
        querystring: CountsQuerySchema,
        response: {
          200: z.object({
            buckets: z.array(
              z.object({ start: z.string(), counts: z.record(z.string(), z.number()) }),
            ),
          }),
          ...ErrorResponses,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const bucketMs = BUCKETS[q.bucket];
      const toMs = q.to === undefined ? Date.now() : Date.parse(q.to);
      // Buckets start on whole minutes/hours/days (UTC), so two requests line up.
      const end = Math.ceil(toMs / bucketMs) * bucketMs;
      const fromMs =
        q.from === undefined
          ? end - DEFAULT_BUCKETS[q.bucket] * bucketMs
          : Math.floor(Date.parse(q.from) / bucketMs) * bucketMs;
      if (fromMs >= end) throw new WardenError("INVALID_REQUEST", "from: must be before to");
      if ((end - fromMs) / bucketMs > MAX_BUCKETS)
        throw new WardenError(
          "INVALID_REQUEST",
          `from/to: at most ${MAX_BUCKETS} ${q.bucket} buckets per request; narrow the range or use a larger bucket`,
        );
      const buckets = await service.records.countEvents({
        fromMs,
        toMs: end,
        bucketMs,
        events: split(q.event),
      });
      return {
        buckets: buckets.map((b) => ({
          start: new Date(b.startMs).toISOString(),
          counts: b.counts,
        })),
      };
    },
  );
};
