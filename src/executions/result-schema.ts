/**
 * The result shape of a run (DESIGN §3) in zod: one schema for every interface
 * that sends it (REST, MCP structuredContent), and for the OpenAPI document.
 */
import { z } from "zod";
import { ERROR_CODES } from "../errors.js";
import { FindingSchema } from "../policy/findings.js";

export const ErrorCodeSchema = z.enum(
  Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...(keyof typeof ERROR_CODES)[]],
);

export const ErrorInfoSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
  retryable: z.boolean(),
});

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

export const TruncatedSchema = z.object({ stdout: z.boolean(), stderr: z.boolean() });

/** Artifacts kept and refused by a run; part of every run's result. */
export const ArtifactsFields = {
  artifacts: z.array(
    z.object({ name: z.string(), size: z.number(), mimeType: z.string(), url: z.string() }),
  ),
  rejectedArtifacts: z
    .array(z.object({ name: z.string(), reason: z.string() }))
    .describe("Files found but refused as artifacts, with the reason."),
};

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
    ...ArtifactsFields,
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
