/**
 * File tools. Paths are relative to the sandbox's /workspace and are opened
 * by Warden's agent INSIDE the sandbox, so `..`, absolute paths and planted
 * symlinks can only ever reach the sandbox's own files; no host path goes in
 * or comes out (files are named by `sandbox://<id>/<path>` URIs).
 */
import { z } from "zod";
import { defineTool, type McpServerOptions, type ToolDefinition } from "./context.js";
import { fileContent, sandboxUri } from "./results.js";
import { FileOutput, ListOutput } from "./schemas.js";
import { SandboxIdSchema } from "./tools-sandbox.js";

const WORKSPACE = "/workspace";

/** Accepts `/workspace/x` for `x` (models often write it); everything else is checked by the core. */
function relative(path: string): string {
  if (path === WORKSPACE || path === `${WORKSPACE}/`) return ".";
  return path.startsWith(`${WORKSPACE}/`) ? path.slice(WORKSPACE.length + 1) : path;
}

const PathSchema = z
  .string()
  .min(1)
  .max(1024)
  .describe("Path relative to /workspace, e.g. data/out.csv (no '..').");

export function fileTools(o: McpServerOptions): ToolDefinition[] {
  return [
    defineTool({
      name: "write_file",
      title: "Write a file into a sandbox",
      description:
        "Creates or replaces a file in the sandbox's /workspace (parent directories are made). Use encoding base64 for binary content.",
      scope: "sessions",
      input: z.object({
        sandbox_id: SandboxIdSchema,
        path: PathSchema,
        content: z
          .string()
          .describe("The file's content: text, or base64 when encoding is base64."),
        encoding: z.enum(["utf8", "base64"]).default("utf8"),
      }),
      output: FileOutput,
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: true,
        openWorldHint: false,
      },
      async run(args) {
        const path = relative(args.path);
        const bytes = Buffer.from(args.content, args.encoding);
        await o.sessions.writeFile(args.sandbox_id, o.userId, path, bytes);
        const uri = sandboxUri(args.sandbox_id, path);
        return {
          content: [{ type: "text", text: `wrote ${bytes.length} bytes to ${path}` }],
          structuredContent: { sandbox_id: args.sandbox_id, path, uri, size: bytes.length },
        };
      },
    }),

    defineTool({
      name: "read_file",
      title: "Read a file from a sandbox",
      description:
        "Returns a file from the sandbox's /workspace: text as text, images as image content, other binary files as a base64 blob.",
      scope: "sessions",
      input: z.object({ sandbox_id: SandboxIdSchema, path: PathSchema }),
      output: FileOutput,
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
      async run(args) {
        const path = relative(args.path);
        const bytes = await o.sessions.readFile(args.sandbox_id, o.userId, path);
        const file = fileContent(args.sandbox_id, path, bytes);
        return {
          content: file.content,
          structuredContent: {
            sandbox_id: args.sandbox_id,
            path,
            uri: sandboxUri(args.sandbox_id, path),
            size: bytes.length,
            encoding: file.encoding,
            content: file.text,
          },
        };
      },
    }),

    defineTool({
      name: "list_files",
      title: "List files in a sandbox",
      description:
        "Lists a directory of the sandbox's /workspace: name, type, size and modification time.",
      scope: "sessions",
      input: z.object({
        sandbox_id: SandboxIdSchema,
        path: PathSchema.default(".").describe(
          "Directory relative to /workspace (default: /workspace itself).",
        ),
      }),
      output: ListOutput,
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
      async run(args) {
        const path = relative(args.path);
        const entries = await o.sessions.listFiles(args.sandbox_id, o.userId, path);
        const lines = entries.map(
          (e) => `${e.type === "directory" ? "d" : "-"} ${e.size}\t${e.name}`,
        );
        return {
          content: [{ type: "text", text: lines.join("\n") || "(empty)" }],
          structuredContent: { sandbox_id: args.sandbox_id, path, entries },
        };
      },
    }),
  ];
}
