/**
 * Usage and quotas over HTTP (docs/usage.md): a key's own usage, every
 * user's for admins (with CSV and NDJSON export, bounded in rows), and the
 * quota rules per user or key with what is used of them now.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Config } from "../../config/schema.js";
import { WardenError } from "../../errors.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import { KEY_ID_PATTERN, USER_ID_PATTERN } from "../../store/keys.js";
import { QUOTA_METRICS, QUOTA_PERIODS, QUOTA_SUBJECTS, QuotaIdSchema } from "../../store/quotas.js";
import type { Store } from "../../store/store.js";
import { exportStream } from "../../usage/export.js";
import { QuotaEnforcer } from "../../usage/quotas.js";
import { readRows, toUsageRow, usageReport } from "../../usage/report.js";
import { ErrorResponses } from "../schemas.js";
import { UsageReportSchema } from "../../contract/usage.js";

const DAY_MS = 86_400_000;
const KEY_ID = z.string().regex(KEY_ID_PATTERN, "keyId: not a key id");
const USER_ID = z.string().regex(USER_ID_PATTERN, `userId: must match ${USER_ID_PATTERN.source}`);

const dateParam = (name: string) =>
  z
    .string()
    .max(40)
    .refine((s) => !Number.isNaN(Date.parse(s)), `${name}: not a date (ISO 8601)`)
    .transform((s) => Date.parse(s))
    .optional()
    .describe(`ISO 8601 date or time (UTC unless it says otherwise).`);

const RangeQuery = z.object({
  from: dateParam("from").describe("Start (inclusive). @default 30 days before `to`"),
  to: dateParam("to").describe("End (exclusive). @default now"),
  granularity: z.enum(["hour", "day", "month"]).default("day"),
});

export const QuotaSchema = z.object({
  id: z.string(),
  subjectType: z.enum(QUOTA_SUBJECTS),
  subjectId: z.string(),
  metric: z.enum(QUOTA_METRICS),
  period: z.enum(QUOTA_PERIODS),
  limit: z.number(),
  used: z.number(),
  resetsAt: z.string(),
});

const PutQuotaSchema = z
  .object({
    subjectType: z.enum(QUOTA_SUBJECTS),
    subjectId: z.string().min(1).max(128),
    metric: z.enum(QUOTA_METRICS),
    period: z.enum(QUOTA_PERIODS),
    limit: z.number().min(0).max(1e15).describe("The most of `metric` per `period`."),
  })
  .strict()
  .superRefine((q, ctx) => {
    const ok =
      q.subjectType === "key" ? KEY_ID.safeParse(q.subjectId) : USER_ID.safeParse(q.subjectId);
    if (!ok.success)
      ctx.addIssue({
        code: "custom",
        path: ["subjectId"],
        message: `subjectId: not a ${q.subjectType} id`,
      });
    if (q.metric === "executions" && !Number.isInteger(q.limit))
      ctx.addIssue({ code: "custom", path: ["limit"], message: "limit: executions are whole" });
  });

function range(q: { from?: number | undefined; to?: number | undefined }): {
  fromMs: number;
  toMs: number;
} {
  const toMs = q.to ?? Date.now();
  return { fromMs: q.from ?? toMs - 30 * DAY_MS, toMs };
}

export const usageRoutes: FastifyPluginAsyncZod<{
  store: Store;
  config: Config;
  service: ExecutionFrontend;
}> = async (app, { store, config, service }) => {
  // Views read usage afresh; enforcement has its own (cached) reads. Made on use: the
  // OpenAPI build registers these routes without a store.
  const views = (): QuotaEnforcer =>
    new QuotaEnforcer({ quotas: store.quotas, usage: store.usage, cacheMs: 0 });

  app.get(
    "/v1/usage",
    {
      config: { scope: "any" },
      schema: {
        summary: "What this key's user used, per hour, day or month (docs/usage.md)",
        querystring: RangeQuery.strict(),
        response: { 200: UsageReportSchema, ...ErrorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      return usageReport(store.usage, config.usage, {
        ...range(q),
        granularity: q.granularity,
        userId: request.actor!.userId,
        groupBy: "none",
      });
    },
  );

  app.get(
    "/api/sandbox/usage",
    {
      config: { scope: "admin" },
      schema: {
        summary: "Every user's usage, filtered and grouped; JSON, CSV or NDJSON (docs/usage.md)",
        querystring: RangeQuery.extend({
          userId: USER_ID.optional(),
          keyId: KEY_ID.optional(),
          groupBy: z.enum(["user", "key", "none"]).default("none"),
          format: z.enum(["json", "csv", "ndjson"]).default("json"),
        }).strict(),
        response: { 200: UsageReportSchema, ...ErrorResponses },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const query = {
        ...range(q),
        granularity: q.granularity,
        userId: q.userId,
        keyId: q.keyId,
        groupBy: q.groupBy,
      };
      if (q.format === "json") return usageReport(store.usage, config.usage, query);
      const rows = await readRows(
        store.usage,
        query,
        config.usage.maxExportRows,
        "usage.maxExportRows",
      );
      const csv = q.format === "csv";
      return reply
        .type(csv ? "text/csv; charset=utf-8" : "application/x-ndjson")
        .header(
          "Content-Disposition",
          `attachment; filename="warden-usage.${csv ? "csv" : "ndjson"}"`,
        )
        .send(
          exportStream(
            rows.map((r) => toUsageRow(r)),
            q.format,
          ) as never,
        );
    },
  );

  app.get(
    "/api/sandbox/quotas",
    {
      config: { scope: "admin" },
      schema: {
        summary: "Quota rules, with what is used of each now and when it resets",
        querystring: z.object({ userId: USER_ID.optional(), keyId: KEY_ID.optional() }).strict(),
        response: { 200: z.object({ quotas: z.array(QuotaSchema) }), ...ErrorResponses },
      },
    },
    async (request) => {
      const { userId, keyId } = request.query;
      if (userId !== undefined && keyId !== undefined)
        throw new WardenError("INVALID_REQUEST", "userId, keyId: name one of them");
      const filter =
        userId !== undefined
          ? { subjectType: "user" as const, subjectId: userId }
          : keyId !== undefined
            ? { subjectType: "key" as const, subjectId: keyId }
            : {};
      const rules = await store.quotas.list(filter);
      const v = views();
      return { quotas: await Promise.all(rules.map((r) => v.view(r))) };
    },
  );

  app.put(
    "/api/sandbox/quotas",
    {
      config: { scope: "admin" },
      schema: {
        summary:
          "Set a quota (one per subject, metric and period: setting it again replaces the limit)",
        body: PutQuotaSchema,
        response: { 200: QuotaSchema, ...ErrorResponses },
      },
    },
    async (request) => {
      const rule = await store.quotas.put(request.body);
      service.audit({
        userId: request.actor!.userId,
        level: "info",
        event: "quota_set",
        message: `quota ${rule.id}: ${rule.metric} per ${rule.period} of ${rule.subjectType} ${rule.subjectId} = ${rule.limit}`,
        data: { ...request.body, quotaId: rule.id, requestId: request.id },
      });
      return views().view(rule);
    },
  );

  app.delete(
    "/api/sandbox/quotas/:id",
    {
      config: { scope: "admin" },
      schema: {
        summary: "Remove a quota",
        params: z.object({ id: QuotaIdSchema }),
        response: { 200: z.object({ success: z.boolean() }), ...ErrorResponses },
      },
    },
    async (request) => {
      const { id } = request.params;
      if (!(await store.quotas.remove(id))) throw new WardenError("NOT_FOUND", `no quota ${id}`);
      service.audit({
        userId: request.actor!.userId,
        level: "info",
        event: "quota_removed",
        message: `quota ${id} removed`,
        data: { quotaId: id, requestId: request.id },
      });
      return { success: true };
    },
  );
};
