/**
 * Pausing, resuming and snapshotting a sandbox (a session) over MCP: the same
 * calls, limits and errors as the REST routes (docs/pause.md).
 */
import { z } from "zod";
import { SnapshotSchema } from "../contract/snapshot.js";
import type { SessionInfo } from "../sessions/manager.js";
import { defineTool, type McpServerOptions, type ToolDefinition } from "./context.js";
import { SandboxIdSchema } from "./tools-sandbox.js";

const StateOutput = z.object({
  sandbox_id: z.string(),
  state: z.enum(["running", "paused", "released"]),
  pausedAt: z.string().nullable(),
  expiresAt: z
    .string()
    .describe("When it ends if it runs from now on (its TTL is stopped while paused)."),
});

function stateView(s: SessionInfo): z.infer<typeof StateOutput> {
  return { sandbox_id: s.id, state: s.state, pausedAt: s.pausedAt, expiresAt: s.expiresAt };
}

const changes = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
} as const;

export function pauseTools(o: McpServerOptions): ToolDefinition[] {
  const stateResult = (s: SessionInfo) => ({
    content: [{ type: "text" as const, text: `sandbox ${s.id} is ${s.state}` }],
    structuredContent: stateView(s),
  });
  return [
    defineTool({
      name: "pause_sandbox",
      title: "Pause a sandbox",
      description:
        "Freezes every process in the sandbox: it uses no CPU, keeps its memory, files and running programs as they are, and its lifetime stops counting. Calls to it fail until resume_sandbox. A sandbox paused for too long is saved as a snapshot and released.",
      scope: "sessions",
      input: z.object({ sandbox_id: SandboxIdSchema }),
      output: StateOutput,
      annotations: changes,
      async run(args) {
        return stateResult(await o.sessions.pause(args.sandbox_id, o.userId));
      },
    }),
    defineTool({
      name: "resume_sandbox",
      title: "Resume a sandbox",
      description:
        "Lets a paused sandbox run again: variables in its code context, files and background commands are where they were when it was paused.",
      scope: "sessions",
      input: z.object({ sandbox_id: SandboxIdSchema }),
      output: StateOutput,
      annotations: changes,
      async run(args) {
        return stateResult(await o.sessions.resume(args.sandbox_id, o.userId));
      },
    }),
    defineTool({
      name: "snapshot_sandbox",
      title: "Snapshot a sandbox's files",
      description:
        "Saves the sandbox's /workspace (and the list of packages installed in it) as a snapshot; create_sandbox with snapshot_id starts a new sandbox with those files. Running programs and code-context variables are not saved.",
      scope: "sessions",
      input: z.object({ sandbox_id: SandboxIdSchema }),
      output: SnapshotSchema,
      annotations: { ...changes, idempotentHint: false },
      async run(args) {
        const snap = await o.sessions.snapshot(args.sandbox_id, o.userId);
        return {
          content: [
            {
              type: "text",
              text: `snapshot_id: ${snap.id} (${snap.sizeBytes} bytes, ${snap.entries} entries)`,
            },
          ],
          structuredContent: snap,
        };
      },
    }),
  ];
}
