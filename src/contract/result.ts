/**
 * The result contract (DESIGN §3): statuses, the error member, artifacts and
 * the execution result, as zod schemas with their types inferred. Every layer
 * takes them from here — the engine fills them, the store keeps them, REST,
 * MCP and the adapters send them — so a shape is written once.
 */
import { z } from "zod";
import { ERROR_CODES, type ErrorCode } from "../errors.js";
import { FindingSchema } from "./policy.js";

export { RUN_STATUSES, RunStatusSchema, type RunStatus } from "./status.js";
import { RUN_STATUSES, RunStatusSchema } from "./status.js";
import { TestsSummarySchema } from "./judging.js";
import { ExecutionUsageSchema } from "./usage.js";
import { IsolationSchema } from "./isolation.js";

/** An execution's status: a run's, or where it stands before one. */
export const ExecutionStatusSchema = z.enum(["queued", "running", ...RUN_STATUSES, "rejected"]);
export type ExecutionStatus = z.infer<typeof ExecutionStatusSchema>;

export const ErrorCodeSchema = z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]);

export const ErrorInfoSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
  retryable: z.boolean(),
});

export const TruncatedSchema = z
  .object({ stdout: z.boolean(), stderr: z.boolean() })
  .describe("Whether each stream was cut at its byte limit.");
export type Truncated = z.infer<typeof TruncatedSchema>;

export const ArtifactEntrySchema = z.object({
  name: z.string(),
  size: z.number(),
  mimeType: z.string(),
  url: z.string(),
});
export type ArtifactEntry = z.infer<typeof ArtifactEntrySchema>;

export const RejectedArtifactSchema = z.object({ name: z.string(), reason: z.string() });
export type RejectedArtifact = z.infer<typeof RejectedArtifactSchema>;

/** Artifacts kept and refused by a run; part of every run's result. */
export const ArtifactsFields = {
  artifacts: z.array(ArtifactEntrySchema),
  rejectedArtifacts: z
    .array(RejectedArtifactSchema)
    .describe("Files found but refused as artifacts, with the reason."),
};

export const ResultMetricsSchema = z.object({
  executionTimeMs: z.number(),
  cpuTimeMs: z.number(),
  peakMemoryBytes: z.number(),
  queueTimeMs: z.number(),
  retries: z.number(),
  warmStart: z
    .boolean()
    .describe("The run took a sandbox the warm pool had started ahead of the request."),
  usage: ExecutionUsageSchema.optional(),
  platform: z
    .string()
    .optional()
    .describe(
      "gvisor tier: how gVisor intercepted the program's system calls (ptrace, systrap, kvm).",
    ),
});

/** `success` of every result: status is completed. */
export const SuccessField = z.boolean().describe('status == "completed"');

/** Findings returned with a result (executions and cells). */
export const FindingsField = z
  .array(FindingSchema)
  .optional()
  .describe("Static-analysis findings, when the key's or server's policy is audit or block.");

/** How a program ended and what it printed: the same fields in every result that has them. */
export const ProgramEndFields = {
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: TruncatedSchema,
};

/** The compile step of a compiled language. */
export const StepResultSchema = z.object({
  status: RunStatusSchema,
  ...ProgramEndFields,
  metrics: ResultMetricsSchema.pick({
    executionTimeMs: true,
    cpuTimeMs: true,
    peakMemoryBytes: true,
  })
    .optional()
    .describe("What the compile step cost."),
});
export type StepResult = z.infer<typeof StepResultSchema>;

export const ExecutionResultSchema = z
  .object({
    id: z.string(),
    status: ExecutionStatusSchema,
    success: SuccessField,
    ...ProgramEndFields,
    compile: StepResultSchema.nullable(),
    ...ArtifactsFields,
    error: ErrorInfoSchema.nullable(),
    metrics: ResultMetricsSchema,
    findings: FindingsField,
    tests: TestsSummarySchema.optional().describe(
      "A test-case run (`tests` or `testsFrom` in the request): verdicts per case and totals.",
    ),
    // Optional: records stored before the gvisor tier existed have none (they ran in namespaces).
    isolation: IsolationSchema.optional().describe("The tier the program ran in."),
  })
  .describe("The result shape shared by every interface.");
export type ExecutionResult = z.infer<typeof ExecutionResultSchema>;

/** A result with nothing run yet (or nothing run at all): the base every final result starts from. */
export function blankResult(
  id: string,
  status: ExecutionStatus = "error",
  error: ExecutionResult["error"] = null,
  metrics: Partial<ExecutionResult["metrics"]> = {},
): ExecutionResult {
  return {
    id,
    status,
    success: false,
    exitCode: null,
    signal: null,
    stdout: "",
    stderr: "",
    truncated: { stdout: false, stderr: false },
    compile: null,
    artifacts: [],
    rejectedArtifacts: [],
    error,
    metrics: {
      executionTimeMs: 0,
      cpuTimeMs: 0,
      peakMemoryBytes: 0,
      queueTimeMs: 0,
      warmStart: false,
      retries: 0,
      ...metrics,
    },
  };
}
