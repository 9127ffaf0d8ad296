/**
 * One-shot tools: `list_runtimes` and `run_code`, which goes through runCode
 * exactly like `POST /v1/executions` and Piston (same static-analysis policy,
 * scheduler, per-user limits, records, audit trail and kill on cancel).
 */
import { IsolationSchema } from "../contract/isolation.js";
import { EnvironmentNameSchema } from "../contract/environment.js";
import { z } from "zod";
import { WardenError } from "../errors.js";
import { runCode } from "../executions/run-code.js";
import type { ExecutionResult } from "../contract/result.js";
import { defineTool, type McpServerOptions, type ToolDefinition } from "./context.js";
import { artifactContent, findingsText, progressReporter, runText, testsText } from "./results.js";
import { ComparisonSchema, TestCaseInputSchema } from "../contract/judging.js";
import { ContextLanguageSchema } from "../contract/session.js";
import { ExecutionResultOutput, RuntimesOutput } from "./schemas.js";

/** Languages with a persistent context in a sandbox (run_in_sandbox). */

function resultText(r: ExecutionResult): string {
  const detail =
    r.exitCode !== null ? ` (exit ${r.exitCode})` : r.signal ? ` (signal ${r.signal})` : "";
  const compile =
    r.compile && r.compile.status !== "completed"
      ? `\ncompile (${r.compile.status}):\n${r.compile.stderr || r.compile.stdout}`
      : "";
  const error = r.error ? `\nerror: ${r.error.code}: ${r.error.message}` : "";
  if (r.tests) return testsText(r.tests) + compile + error;
  return runText(r.status, detail, r.stdout, r.stderr) + compile + error;
}

/** A string field within a byte limit, refused with a message naming the limit. */
const bytes = (field: string, max: number, key: string) =>
  z
    .string()
    .refine((s) => Buffer.byteLength(s) <= max, `${field}: must be at most ${max} bytes (${key})`);

export function runTools(o: McpServerOptions): ToolDefinition[] {
  return [
    defineTool({
      name: "list_runtimes",
      title: "List languages",
      description:
        "Lists the programming languages this Warden can run, with versions and accepted aliases. Call it when unsure whether a language is available.",
      scope: "any",
      input: z.object({}),
      output: RuntimesOutput,
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
      async run() {
        const runtimes = await o.registry.available();
        const sandboxLanguages = ContextLanguageSchema.options.filter((l) =>
          runtimes.some((r) => r.language === l),
        );
        const lines = runtimes.map(
          (r) => `${r.language} ${r.version ?? ""} (aliases: ${r.aliases.join(", ") || "none"})`,
        );
        return {
          content: [
            {
              type: "text",
              text: `${lines.join("\n")}\nrun_in_sandbox contexts: ${sandboxLanguages.join(", ")}`,
            },
          ],
          structuredContent: { runtimes, sandboxLanguages },
        };
      },
    }),

    defineTool({
      name: "run_code",
      title: "Run code once",
      description:
        "Runs a program once in a fresh, isolated sandbox (no network, limited memory and time) and returns its stdout, stderr, exit code and status. Nothing persists between calls: use create_sandbox for multi-step work. Compiled languages (c, cpp, java, rust, go...) are compiled first; compiler errors come back in the result.",
      scope: "execute",
      input: z.object({
        language: z
          .string()
          .min(1)
          .max(64)
          .describe(
            'Language name or alias, e.g. "python", "javascript", "bash", "c" (see list_runtimes).',
          ),
        code: bytes("code", o.config.maxCodeBytes, "maxCodeBytes").describe(
          "The complete program source. It is the entry point, saved under the language's usual file name (main.py, main.c...).",
        ),
        files: z
          .array(
            z.object({
              path: z
                .string()
                .min(1)
                .max(1024)
                .describe("Path relative to the working directory, e.g. data/input.csv."),
              content: z
                .string()
                .describe("File content: text, or base64 when encoding is base64."),
              encoding: z.enum(["utf8", "base64"]).default("utf8"),
            }),
          )
          .max(o.config.maxFiles)
          .optional()
          .describe("Extra files placed next to the program before it runs (data, modules)."),
        stdin: bytes("stdin", o.config.maxStdinBytes, "maxStdinBytes")
          .optional()
          .describe("Text fed to the program's standard input."),
        timeout_seconds: z
          .number()
          .positive()
          .optional()
          .describe(
            `Wall-clock limit in seconds (default ${o.config.defaultTimeout}, at most ${o.config.maxTimeout}).`,
          ),
        environment: EnvironmentNameSchema.optional(),
        tests: z
          .array(TestCaseInputSchema)
          .min(1)
          .max(o.config.judging.maxTests)
          .optional()
          .describe(
            "Test cases ({name?, stdin?, args?, expectedOutput?}): the program is compiled once and run on each in a fresh sandbox; the answer gives a verdict per case.",
          ),
        compare: ComparisonSchema.optional().describe(
          "How outputs are compared with expectedOutput (default: trailing whitespace ignored).",
        ),
        stop_on_first_failure: z.boolean().optional(),
        isolation: IsolationSchema.optional().describe(
          "Isolation tier: namespaces (fast) or gvisor (gVisor's user-space kernel); default: the key's, else the server's.",
        ),
      }),
      output: ExecutionResultOutput,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
      async run(args, extra) {
        const main = o.registry.lookup(args.language)?.fileName;
        const files =
          args.files && main
            ? [{ path: main, content: args.code, encoding: "utf8" as const }, ...args.files]
            : undefined;
        if (files && new Set(files.map((f) => f.path)).size !== files.length)
          throw new WardenError(
            "INVALID_REQUEST",
            `files: each path once, and not ${main} (the program)`,
          );
        // The one run path: the key's policy (MCP must not be the way around block
        // mode), the scheduler, the audit trail; a cancelled call kills the run.
        const outcome = await runCode(
          { service: o.service, analyzer: o.analyzer },
          {
            language: args.language,
            ...(files ? { files, entrypoint: main } : { code: args.code }),
            stdin: args.stdin,
            timeout: args.timeout_seconds,
            environment: args.environment,
            tests: args.tests,
            compare: args.compare,
            stopOnFirstFailure: args.stop_on_first_failure,
            isolation: args.isolation,
            retryOnFailure: true,
            wait: true,
          },
          {
            userId: o.userId,
            mayDelegate: false,
            keyId: o.keyId,
            policy: o.policy,
            networkAllow: o.networkAllow,
            isolation: o.isolation ?? undefined,
          },
          { source: "mcp", signal: extra.signal, abortReason: "cancelled by the MCP client" },
        );
        if (outcome.rejected) {
          const rejected = outcome.rejected;
          return {
            isError: true,
            content: [
              { type: "text", text: `${resultText(rejected)}\n${findingsText(rejected.findings)}` },
            ],
            structuredContent: { ...rejected },
          };
        }
        const { execution } = outcome;
        const findings = outcome.findings ? { findings: outcome.findings } : {};
        const report = progressReporter(extra);
        execution.on("output", report);
        try {
          const result = await execution.done;
          return {
            ...(result.error ? { isError: true } : {}),
            content: [
              { type: "text", text: resultText(result) },
              ...(await artifactContent(o, result.id, result)),
            ],
            structuredContent: { ...result, ...findings },
          };
        } finally {
          execution.off("output", report);
        }
      },
    }),
  ];
}
