/** Response shapes, in zod, for validation of what we send and for the OpenAPI document. */
import { z } from "zod";
import { ERROR_CODES } from "../errors.js";
import { FindingSchema } from "../policy/findings.js";

const ErrorCodeSchema = z.enum(
  Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...(keyof typeof ERROR_CODES)[]],
);

export const ErrorInfoSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
  retryable: z.boolean(),
});

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

const StatusSchema = z.enum([
  "queued",
  "running",
  "completed",
  "failed",
  "timeout",
  "memory_limit",
  "output_limit",
  "disk_limit",
  "killed",
  "rejected",
  "error",
]);

const TruncatedSchema = z.object({ stdout: z.boolean(), stderr: z.boolean() });

export const ExecutionResultSchema = z
  .object({
    id: z.string(),
    status: StatusSchema,
    success: z.boolean(),
    exitCode: z.number().int().nullable(),
    signal: z.string().nullable(),
    stdout: z.string(),
    stderr: z.string(),
    truncated: TruncatedSchema,
    compile: z
      .object({
        status: StatusSchema,
        exitCode: z.number().int().nullable(),
        signal: z.string().nullable(),
        stdout: z.string(),
        stderr: z.string(),
        truncated: TruncatedSchema,
      })
      .nullable(),
    artifacts: z.array(
      z.object({ name: z.string(), size: z.number(), mimeType: z.string(), url: z.string() }),
    ),
    error: ErrorInfoSchema.nullable(),
    metrics: z.object({
      executionTimeMs: z.number(),
      cpuTimeMs: z.number(),
      peakMemoryBytes: z.number(),
      queueTimeMs: z.number(),
      retries: z.number(),
    }),
    findings: z
      .array(FindingSchema)
      .optional()
      .describe("Static-analysis findings, when the key's or server's policy is audit or block."),
  })
  .describe("The result shape shared by every interface.");

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
