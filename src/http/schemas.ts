/** Response shapes, in zod, for validation of what we send and for the OpenAPI document. */
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
    "Every error: a code from the table in the README, a message naming the field, the request id.",
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
});

export const IdParamsSchema = z.object({
  id: z.string().regex(/^exec_[0-9A-Z]{26}$/, "id: not an execution id"),
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
