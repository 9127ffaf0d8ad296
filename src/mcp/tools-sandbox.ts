/**
 * Stateful tools: a sandbox is an ordinary Warden session owned by the
 * caller, named by an explicit `sandbox_id` (the protocol keeps no session
 * state of its own). Same per-user limits, TTL and idle expiry as REST.
 */
import { IsolationSchema } from "../contract/isolation.js";
import { EnvironmentNameSchema } from "../contract/environment.js";
import { z } from "zod";
import { WardenError } from "../errors.js";
import { CellCodeSchema, CommandLineSchema, ContextLanguageSchema } from "../contract/session.js";
import { SnapshotIdSchema } from "../contract/snapshot.js";
import type { SessionInfo } from "../sessions/manager.js";
import { allowCommand, checkCell, type SessionRunDeps } from "../sessions/run-policy.js";
import { defineTool, type McpServerOptions, type ToolDefinition } from "./context.js";
import {
  artifactContent,
  findingsText,
  progressReporter,
  richContent,
  runText,
} from "./results.js";
import {
  CellOutput,
  CommandOutput,
  DestroyOutput,
  PreviewOutput,
  SandboxOutput,
} from "./schemas.js";

export const SandboxIdSchema = z
  .string()
  .min(1)
  .max(64)
  .describe("The sandbox_id that create_sandbox returned.");

function timeoutSchema(o: McpServerOptions, what: string) {
  return z
    .number()
    .positive()
    .optional()
    .describe(
      `${what} in seconds (default ${o.config.defaultTimeout}, at most ${o.config.maxTimeout}). It ends the call, not the sandbox.`,
    );
}

function sandboxView(s: SessionInfo): z.infer<typeof SandboxOutput> {
  return {
    sandbox_id: s.id,
    language: s.language,
    createdAt: s.createdAt,
    expiresAt: s.expiresAt,
    idleTimeoutSeconds: s.idleTimeoutSeconds,
    limits: s.limits,
  };
}

export function sandboxTools(o: McpServerOptions): ToolDefinition[] {
  // Code and commands go through the session run policy, as on REST: the key's
  // static-analysis mode applies here too (MCP is no way around block mode).
  const deps: SessionRunDeps = {
    sessions: o.sessions,
    analyzer: o.analyzer,
    service: o.service,
    config: o.config,
  };
  const actor = { userId: o.userId, policy: o.policy };
  return [
    defineTool({
      name: "create_sandbox",
      title: "Create a sandbox",
      description:
        "Starts an isolated sandbox that keeps state across calls: files in /workspace, a persistent Python or JavaScript context, and a shell. Returns sandbox_id for the other sandbox tools. It is destroyed by destroy_sandbox, at its TTL, or after being idle; the number you may hold at once is limited.",
      scope: "sessions",
      input: z.object({
        language: ContextLanguageSchema.default("python").describe(
          "Default language of run_in_sandbox in this sandbox.",
        ),
        timeout_seconds: z
          .number()
          .positive()
          .optional()
          .describe(
            `How long the sandbox lives, in seconds (default ${o.config.sessionTimeout}, at most ${o.config.maxSessionTimeout}).`,
          ),
        environment: EnvironmentNameSchema.optional(),
        snapshot_id: SnapshotIdSchema.optional().describe(
          "Start with the files of a snapshot_sandbox snapshot.",
        ),
        isolation: IsolationSchema.optional().describe(
          "Isolation tier: namespaces (fast) or gvisor (gVisor's user-space kernel); default: the key's, else the server's.",
        ),
      }),
      output: SandboxOutput,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
      async run(args) {
        const info = await o.sessions.create(o.userId, {
          language: args.language,
          timeout: args.timeout_seconds,
          environment: args.environment,
          snapshot: args.snapshot_id,
          isolation: args.isolation,
          keyIsolation: o.isolation,
          metadata: { via: "mcp" },
        });
        const view = sandboxView(info);
        return {
          content: [
            {
              type: "text",
              text: `sandbox_id: ${view.sandbox_id} (${view.language}; expires ${view.expiresAt})`,
            },
          ],
          structuredContent: view,
        };
      },
    }),

    defineTool({
      name: "run_in_sandbox",
      title: "Run code in a sandbox",
      description:
        "Runs code in the sandbox's persistent context, like a notebook cell: variables, functions and imports from earlier calls are still there, and the working directory is /workspace. The value of the last expression is returned; matplotlib figures and other images come back as image content; an exception comes back with its traceback.",
      scope: "sessions",
      input: z.object({
        sandbox_id: SandboxIdSchema,
        code: CellCodeSchema.describe(
          "Code to run (a cell). Print, or end with an expression, to see results.",
        ),
        language: ContextLanguageSchema.optional().describe(
          "python, javascript, typescript or bash (default: the sandbox's language).",
        ),
        timeout_seconds: timeoutSchema(o, "Limit for this cell"),
      }),
      output: CellOutput,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
      async run(args, extra) {
        const check = await checkCell(deps, actor, args.sandbox_id, {
          code: args.code,
          language: args.language,
        });
        if (check.rejected) {
          // No structuredContent: a refusal does not fit the cell's output schema.
          const { error, findings } = check.rejected;
          return {
            isError: true,
            content: [
              {
                type: "text",
                text: `rejected: ${error.code}: ${error.message}\n${findingsText(findings)}`,
              },
            ],
          };
        }
        const cell = await check.run({
          timeout: args.timeout_seconds,
          onOutput: progressReporter(extra),
          signal: extra.signal,
        });
        const rich = richContent(cell.results);
        const error = cell.error
          ? `\n${cell.error.name}: ${cell.error.value}\n${cell.error.traceback}`
          : "";
        return {
          content: [
            { type: "text", text: runText(cell.status, "", cell.stdout, cell.stderr) + error },
            ...rich.content,
            ...(await artifactContent(o, args.sandbox_id, cell)),
          ],
          structuredContent: { ...cell, results: rich.structured },
        };
      },
    }),

    defineTool({
      name: "exec_command",
      title: "Run a shell command in a sandbox",
      description:
        "Runs a command inside the sandbox, in /workspace: a string is run by /bin/sh -c (pipes, redirections), an array is run as argv without a shell. Returns exit code, stdout and stderr. There is no network; installed tools are those of the host's /usr.",
      scope: "sessions",
      input: z.object({
        sandbox_id: SandboxIdSchema,
        command: CommandLineSchema.describe(
          'A shell command line ("ls -la | head") or an argv array (["python3", "main.py"]).',
        ),
        timeout_seconds: timeoutSchema(o, "Limit for this command"),
      }),
      output: CommandOutput,
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
      async run(args, extra) {
        const allowed = allowCommand(deps, actor, args.sandbox_id, args.command, false);
        const r = await allowed.run({
          timeout: args.timeout_seconds,
          onOutput: progressReporter(extra),
          signal: extra.signal,
        });
        const detail =
          r.exitCode !== null ? ` (exit ${r.exitCode})` : r.signal ? ` (signal ${r.signal})` : "";
        return {
          content: [
            { type: "text", text: runText(r.status, detail, r.stdout, r.stderr) },
            ...(await artifactContent(o, args.sandbox_id, r)),
          ],
          structuredContent: { ...r },
        };
      },
    }),

    defineTool({
      name: "get_preview_url",
      title: "Preview URL of a sandbox port",
      description:
        "Returns the URL at which a web server listening on a port inside the sandbox can be viewed (the Warden web-preview route). Start the server first, e.g. with exec_command.",
      scope: "sessions",
      input: z.object({
        sandbox_id: SandboxIdSchema,
        port: z
          .number()
          .int()
          .min(1)
          .max(65_535)
          .describe("The port the server listens on inside the sandbox."),
      }),
      output: PreviewOutput,
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
      async run(args) {
        const id = o.sessions.get(args.sandbox_id, o.userId).id;
        if (o.publicUrl === undefined)
          throw new WardenError(
            "INVALID_REQUEST",
            "get_preview_url: this MCP server (stdio) serves no HTTP; previews need Warden's /mcp on `warden serve`",
          );
        const url = `${o.publicUrl}/v1/sessions/${id}/ports/${args.port}/`;
        return {
          content: [{ type: "text", text: url }],
          structuredContent: { sandbox_id: id, port: args.port, url },
        };
      },
    }),

    defineTool({
      name: "destroy_sandbox",
      title: "Destroy a sandbox",
      description:
        "Destroys the sandbox: every process in it ends and its files are gone. Call it when the work is done.",
      scope: "sessions",
      input: z.object({ sandbox_id: SandboxIdSchema }),
      output: DestroyOutput,
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
      async run(args) {
        await o.sessions.destroy(args.sandbox_id, o.userId, "destroyed by the MCP client");
        return {
          content: [{ type: "text", text: `sandbox ${args.sandbox_id} destroyed` }],
          structuredContent: { sandbox_id: args.sandbox_id, destroyed: true },
        };
      },
    }),
  ];
}
