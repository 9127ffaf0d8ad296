import { z } from "zod";

/**
 * One language, as data. argv templates use `{tool}` placeholders for the
 * resolved tool paths, plus `{file}` (the entry file), `{memoryMb}` and
 * `{lib}` (Warden's private files, read-only inside the sandbox).
 */
export const RuntimeDefinitionSchema = z
  .object({
    language: z
      .string()
      .regex(/^[a-z][a-z0-9+#-]*$/)
      .describe("Canonical name, e.g. python."),
    aliases: z.array(z.string()).default([]).describe("Other names accepted in requests."),
    extensions: z
      .array(z.string().regex(/^\.[a-z0-9]+$/))
      .default([])
      .describe("File extensions for detection."),
    fileName: z
      .string()
      .min(1)
      .describe("Name the code is saved under when given as a single string."),
    tools: z
      .record(z.string().regex(/^[a-z][a-zA-Z0-9]*$/), z.array(z.string().min(1)).min(1))
      .describe("Tool name → candidate executables, searched in the system search path."),
    privateTools: z
      .record(z.string(), z.string())
      .default({})
      .describe("Tool name → file Warden ships (copied into the run dir), e.g. esbuild."),
    compile: z
      .array(z.string())
      .optional()
      .describe("Compile argv template, run in its own sandbox."),
    run: z.array(z.string()).min(1).describe("Run argv template."),
    env: z.record(z.string(), z.string()).default({}).describe("Environment for both steps."),
    version: z
      .object({
        tool: z.string(),
        args: z.array(z.string()),
        pattern: z.string().default("(\\d+\\.\\d+(?:\\.\\d+)?)"),
      })
      .describe("How to ask the runtime its version."),
    compileLimits: z
      .object({
        memoryMb: z.number().int().positive().optional(),
        pids: z.number().int().positive().optional(),
        timeoutMs: z.number().int().positive().optional(),
      })
      .default({})
      .describe("Compilers need more than the programs they build."),
    warm: z
      .enum(["python", "node"])
      .optional()
      .describe(
        "A warm stub Warden ships for this interpreter: pooled sandboxes start it in place of the program, waiting for the request.",
      ),
    entryFromSource: z
      .enum(["java"])
      .optional()
      .describe(
        "java: the entry file is saved under its public class's name and {mainClass} names the class with main.",
      ),
  })
  .strict();

export type RuntimeDefinition = z.infer<typeof RuntimeDefinitionSchema>;
export type RuntimeDefinitionInput = z.input<typeof RuntimeDefinitionSchema>;
