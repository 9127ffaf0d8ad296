/**
 * Output schemas of the MCP tools (`outputSchema`; what `structuredContent`
 * holds). The execution result is DESIGN §3's shape, as everywhere else.
 */
import { z } from "zod";

const TruncatedSchema = z.object({ stdout: z.boolean(), stderr: z.boolean() });

export const ErrorInfoSchema = z
  .object({ code: z.string(), message: z.string(), retryable: z.boolean() })
  .describe("Why Warden could not do what was asked: a Warden error code and message.");

/** DESIGN §3: the one result shape of a run. */
export const ExecutionResultOutput = z.object({
  id: z.string(),
  status: z
    .string()
    .describe(
      "completed (exit 0), failed, timeout, memory_limit, output_limit, disk_limit, killed, rejected or error",
    ),
  success: z.boolean(),
  exitCode: z.number().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: TruncatedSchema,
  compile: z
    .object({
      status: z.string(),
      exitCode: z.number().nullable(),
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
});

export const RuntimesOutput = z.object({
  runtimes: z.array(
    z.object({
      language: z.string(),
      aliases: z.array(z.string()),
      extensions: z.array(z.string()),
      version: z.string().nullable(),
    }),
  ),
  sandboxLanguages: z
    .array(z.string())
    .describe("Languages with a persistent context for run_in_sandbox."),
});

export const SandboxOutput = z.object({
  sandbox_id: z.string(),
  language: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().describe("When the sandbox is destroyed, whatever happens (its TTL)."),
  idleTimeoutSeconds: z.number(),
  limits: z.object({
    memoryMb: z.number(),
    cpuPercent: z.number(),
    diskMb: z.number(),
    pids: z.number(),
  }),
});

export const CellOutput = z.object({
  status: z.enum(["completed", "failed", "timeout"]),
  success: z.boolean(),
  stdout: z.string(),
  stderr: z.string(),
  results: z
    .array(
      z.object({
        data: z.record(z.string(), z.string()),
        mimeTypes: z.array(z.string()),
        isMainResult: z.boolean(),
      }),
    )
    .describe("Rich outputs; image data is in the image content, not repeated here."),
  error: z.object({ name: z.string(), value: z.string(), traceback: z.string() }).nullable(),
  durationMs: z.number(),
});

export const CommandOutput = z.object({
  status: z.enum(["completed", "failed", "timeout", "output_limit"]),
  success: z.boolean(),
  exitCode: z.number().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean(),
  durationMs: z.number(),
});

export const FileOutput = z.object({
  sandbox_id: z.string(),
  path: z.string().describe("Relative to /workspace."),
  uri: z.string().describe("sandbox://<sandbox_id>/<path>"),
  size: z.number(),
  encoding: z.enum(["utf8", "base64"]).optional(),
  content: z.string().optional(),
});

export const ListOutput = z.object({
  sandbox_id: z.string(),
  path: z.string(),
  entries: z.array(
    z.object({
      name: z.string(),
      type: z.string(),
      size: z.number(),
      mtime: z.string().nullable(),
    }),
  ),
});

export const PreviewOutput = z.object({
  sandbox_id: z.string(),
  port: z.number(),
  url: z.string(),
});

export const DestroyOutput = z.object({ sandbox_id: z.string(), destroyed: z.boolean() });
