/** Inputs and results of session calls in zod: one schema for REST and MCP. */
import { z } from "zod";
import { ArtifactsFields } from "../executions/result-schema.js";

/** Languages with a persistent code context in a session. */
export const ContextLanguageSchema = z.enum(["python", "javascript"]);
export type ContextLanguage = z.infer<typeof ContextLanguageSchema>;

/** A command: argv, or a line for /bin/sh -c; bounded in count and size. */
export const CommandLineSchema = z
  .union([z.array(z.string().max(32_768)).min(1).max(1024), z.string().min(1).max(65_536)])
  .describe("argv, or a string run by /bin/sh -c inside the sandbox.");

/** A cell's code. */
export const CellCodeSchema = z.string().max(1024 * 1024, "code: at most 1 MiB");

/** A command's result (foreground). */
export const CommandResultSchema = z.object({
  status: z.enum(["completed", "failed", "timeout", "output_limit"]),
  success: z.boolean(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean(),
  durationMs: z.number(),
  ...ArtifactsFields,
});

/** A cell's result in the persistent code context. */
export const CellResultSchema = z.object({
  status: z.enum(["completed", "failed", "timeout"]),
  success: z.boolean(),
  stdout: z.string(),
  stderr: z.string(),
  results: z.array(z.object({ data: z.record(z.string(), z.string()), isMainResult: z.boolean() })),
  error: z.object({ name: z.string(), value: z.string(), traceback: z.string() }).nullable(),
  truncated: z.boolean().describe("Output beyond the session's limits.outputBytes was dropped."),
  durationMs: z.number(),
  ...ArtifactsFields,
});
