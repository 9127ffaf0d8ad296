/**
 * Output schemas of the MCP tools (`outputSchema`; what `structuredContent`
 * holds). The execution result is DESIGN §3's shape, as everywhere else.
 */
import { z } from "zod";
import { ExecutionResultSchema } from "../contract/result.js";
import { CellResultSchema, CommandResultSchema } from "../contract/session.js";

/** DESIGN §3: the one result shape of a run, as every interface sends it. */
export const ExecutionResultOutput = ExecutionResultSchema;

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

/** A cell's result; image data is in the image content, not repeated here. */
export const CellOutput = CellResultSchema.extend({
  results: z
    .array(
      z.object({
        data: z.record(z.string(), z.string()),
        mimeTypes: z.array(z.string()),
        isMainResult: z.boolean(),
      }),
    )
    .describe("Rich outputs; image data is in the image content, not repeated here."),
});

export const CommandOutput = CommandResultSchema;

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
