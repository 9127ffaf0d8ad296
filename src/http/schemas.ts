/** Response shapes, in zod, for validation of what we send and for the OpenAPI document. */
import { IsolationSchema } from "../contract/isolation.js";
import { z } from "zod";
import { FindingSchema } from "../contract/policy.js";
import { ErrorCodeSchema, ExecutionResultSchema } from "../contract/result.js";

export { ErrorInfoSchema, ExecutionResultSchema } from "../contract/result.js";

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: ErrorCodeSchema,
      message: z.string(),
      requestId: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .describe(
    "Every error: a code from the table in docs/rest.md (#errors), a message naming the field, the request id.",
  );

export const AcceptedSchema = z.object({
  id: z.string(),
  status: z.literal("queued"),
  findings: z.array(FindingSchema).optional(),
});

export const ExecutionViewSchema = ExecutionResultSchema.extend({
  language: z.string(),
  userId: z.string(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});

export const RuntimeSchema = z.object({
  language: z.string(),
  aliases: z.array(z.string()),
  extensions: z.array(z.string()),
  version: z.string().nullable(),
  isolation: z
    .array(IsolationSchema)
    .describe("The tiers it runs in here: namespaces always, gvisor when this host offers it."),
});

const EXECUTION_ID = /^exec_[0-9A-Z]{26}$/;
/** Ids one GET /v1/executions?ids= may name. */
export const MAX_LISTED_IDS = 100;

export const IdParamsSchema = z.object({
  id: z.string().regex(EXECUTION_ID, "id: not an execution id"),
});

/** The error answers every authenticated route may give, for the OpenAPI document. */
export const ErrorResponses = {
  400: ErrorBodySchema,
  401: ErrorBodySchema,
  403: ErrorBodySchema,
  404: ErrorBodySchema,
  429: ErrorBodySchema,
  503: ErrorBodySchema,
};

const STATUSES = ExecutionResultSchema.shape.status.options;

export const ListExecutionsQuerySchema = z
  .object({
    status: z
      .string()
      .max(256)
      .refine((s) => s.split(",").every((x) => (STATUSES as readonly string[]).includes(x)), {
        message: `status: one or more of ${STATUSES.join(", ")}, comma-separated`,
      })
      .optional()
      .describe("Only these statuses (comma-separated)."),
    from: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("Created at or after this time (ISO 8601)."),
    to: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("Created before this time (ISO 8601)."),
    userId: z
      .string()
      .max(128)
      .optional()
      .describe("Admin keys only: one user's executions (default: everyone's)."),
    limit: z.coerce.number().int().min(1).max(100).default(20).describe("Page size (1-100)."),
    cursor: z.string().max(256).optional().describe("`nextCursor` of the previous page."),
    ids: z
      .string()
      .max(MAX_LISTED_IDS * 32, `ids: at most ${MAX_LISTED_IDS} execution ids`)
      .refine((s) => s.split(",").length <= MAX_LISTED_IDS, {
        message: `ids: at most ${MAX_LISTED_IDS} execution ids`,
      })
      .refine((s) => s.split(",").every((id) => EXECUTION_ID.test(id)), {
        message: "ids: comma-separated execution ids (exec_...)",
      })
      .optional()
      .describe(
        `Only these executions (comma-separated, at most ${MAX_LISTED_IDS}), in the order given; ids the caller may not see are left out. Not with cursor; limit does not apply.`,
      ),
  })
  .strict();

/** One execution in a list: its state and result summary, never its output. */
export const ExecutionSummarySchema = ExecutionResultSchema.pick({
  id: true,
  status: true,
  success: true,
  exitCode: true,
  signal: true,
  truncated: true,
  error: true,
  metrics: true,
}).extend({
  userId: z.string(),
  language: z.string(),
  source: z.string(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});

export const ExecutionListSchema = z.object({
  executions: z.array(ExecutionSummarySchema).describe("Newest first."),
  nextCursor: z
    .string()
    .nullable()
    .describe("Pass as `cursor` for the next page; null at the end."),
});
