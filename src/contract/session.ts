/**
 * What sessions take and give, in zod: one schema for the manager's types
 * (z.infer), REST, MCP and OpenAPI. Statuses and `truncated` are the
 * execution result's own (DESIGN §3), so a command, a background command and
 * a cell end in the same words as an execution.
 */
import { IsolationSchema } from "./isolation.js";
import { z } from "zod";
import { FindingSchema } from "./policy.js";
import { SandboxLimitsSchema } from "./limits.js";
import {
  ArtifactsFields,
  ErrorInfoSchema,
  ExecutionResultSchema,
  FindingsField,
  ProgramEndFields,
  SuccessField,
  TruncatedSchema,
} from "./result.js";

/**
 * Languages with a persistent code context in a session. TypeScript cells run
 * in the JavaScript context (types stripped); bash is a persistent shell.
 */
export const ContextLanguageSchema = z.enum(["python", "javascript", "typescript", "bash"]);
export type ContextLanguage = z.infer<typeof ContextLanguageSchema>;

/** A command: argv, or a line for /bin/sh -c; bounded in count and size. */
export const CommandLineSchema = z
  .union([z.array(z.string().max(32_768)).min(1).max(1024), z.string().min(1).max(65_536)])
  .describe("argv, or a string run by /bin/sh -c inside the sandbox.");

/** A cell's code. */
export const CellCodeSchema = z.string().max(1024 * 1024, "code: at most 1 MiB");

/** How a session call ended: the execution statuses that apply to it. */
export const CommandStatusSchema = ExecutionResultSchema.shape.status
  .extract(["completed", "failed", "timeout", "memory_limit", "output_limit", "killed"])
  .describe(
    "completed (exit 0 / no error), failed (non-zero exit, a signal, an error), timeout, memory_limit (the session's cgroup OOM-killed it), output_limit, killed (by you: kill route, cancel, hang-up, session end).",
  );
export type CommandStatus = z.infer<typeof CommandStatusSchema>;

/** A foreground command's result. */
export const CommandResultSchema = z.object({
  status: CommandStatusSchema,
  success: SuccessField,
  ...ProgramEndFields,
  durationMs: z.number(),
  ...ArtifactsFields,
});

/** A background command: its state, and when it has ended, how. */
export const BackgroundCommandSchema = z.object({
  id: z.string(),
  command: z.union([z.array(z.string()), z.string()]),
  status: z.union([z.literal("running"), CommandStatusSchema]),
  success: SuccessField,
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  truncated: TruncatedSchema.describe(
    "Output beyond the limit was dropped (kept: the first part).",
  ),
});

export const RichResultSchema = z.object({
  data: z
    .record(z.string(), z.string())
    .describe(
      "A MIME bundle: text/plain, text/html, text/markdown, text/latex, image/png and image/jpeg (base64), image/svg+xml, application/json, application/javascript...",
    ),
  metadata: z
    .record(z.string(), z.unknown())
    .optional()
    .describe(
      "Jupyter's metadata of the result, by MIME type (e.g. an image's width), when it has some.",
    ),
  isMainResult: z.boolean(),
});

/** A cell's result in the persistent code context. */
export const CellResultSchema = z.object({
  status: CommandStatusSchema,
  success: SuccessField,
  stdout: z.string(),
  stderr: z.string(),
  results: z.array(RichResultSchema),
  error: z
    .object({
      name: z.string(),
      value: z.string(),
      traceback: z.string().describe("The user's frames only, never Warden's kernel."),
    })
    .nullable(),
  truncated: TruncatedSchema,
  durationMs: z.number(),
  ...ArtifactsFields,
  findings: FindingsField,
});

/**
 * A cell the static-analysis policy refused (block mode): nothing ran. The
 * same status, error and findings as a refused execution's result.
 */
export const PolicyRefusalSchema = z
  .object({
    status: z.literal("rejected"),
    success: z.literal(false),
    error: ErrorInfoSchema.describe("MALICIOUS_CODE, and why."),
    findings: z.array(FindingSchema),
  })
  .describe("Refused by the static-analysis policy (block): status rejected, MALICIOUS_CODE.");
export type PolicyRefusal = z.infer<typeof PolicyRefusalSchema>;

/** A session as every interface shows it. */
export const SessionSchema = z.object({
  id: z.string(),
  userId: z.string(),
  status: z.enum(["running", "ended"]),
  createdAt: z.string(),
  expiresAt: z
    .string()
    .describe("When it ends, whatever happens; `extend` moves it (up to maxSessionTimeout)."),
  lastUsedAt: z.string(),
  idleTimeoutSeconds: z.number(),
  language: ContextLanguageSchema.describe("Default language of `run` (the code context)."),
  network: z
    .array(z.string())
    .describe("Hosts the session may reach through the egress proxy; empty = no network."),
  limits: SandboxLimitsSchema.pick({ memoryMb: true, cpuPercent: true, diskMb: true, pids: true }),
  metadata: z.record(z.string(), z.string()),
  environment: z
    .string()
    .optional()
    .describe("The prebuilt environment mounted read-only (GET /v1/environments)."),
  isolation: IsolationSchema.optional().describe("The tier the session's sandbox runs in."),
  state: z
    .enum(["running", "paused", "released"])
    .describe(
      "running; paused (frozen: no CPU, memory kept, TTL stopped; POST .../resume); released (paused past sessions.pausedSnapshotAfter: snapshotted, its sandbox gone; start a new session from `snapshotId`).",
    ),
  pausedAt: z.string().nullable().describe("When it was paused (null unless paused or released)."),
  snapshotId: z
    .string()
    .nullable()
    .describe("Released sessions: the snapshot that holds their workspace."),
});

/** A file change under a watched directory (GET /v1/sessions/:id/watch). */
export const WatchEventSchema = z
  .object({
    kind: z
      .enum(["created", "modified", "removed", "overflow"])
      .describe("overflow: some changes were dropped (more than the agent reports at once)."),
    path: z.string().describe("Relative to /workspace."),
    type: z.enum(["file", "directory", "symlink", "other"]).nullable(),
  })
  .strict();
export type WatchEvent = z.infer<typeof WatchEventSchema>;
