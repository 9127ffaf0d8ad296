/**
 * Warden as an MCP server: a thin adapter that turns tool calls into calls
 * of the execution service and the session manager, acting as one user.
 * `createMcpServer` makes a NEW server per client; a server (and its
 * transport) is never shared, so one client can never see another's calls.
 */
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WardenError } from "../errors.js";
import type { Scope } from "../store/keys.js";
import type { McpServerOptions } from "./context.js";
import { errorResult, fileResource, protocolError, type ToolExtra } from "./results.js";
import { fileTools } from "./tools-files.js";
import { runTools } from "./tools-run.js";
import { sandboxTools } from "./tools-sandbox.js";
import { pauseTools } from "./tools-pause.js";

const VERSION = "0.1.0";

export type { McpServerOptions } from "./context.js";

const INSTRUCTIONS = `Warden runs code in isolated Linux sandboxes (no network, hard limits).
Use run_code for one-off programs. For work across several steps, create_sandbox once,
then run_in_sandbox (persistent Python or JavaScript context: variables, imports and
files carry over; matplotlib figures come back as images), exec_command (shell),
write_file / read_file / list_files (paths relative to /workspace), and destroy_sandbox
when done. Sandboxes also end on their own at their TTL or after being idle.`;

function allowed(scopes: readonly Scope[] | undefined, needed: Scope | "any"): boolean {
  if (scopes === undefined || needed === "any") return true;
  return scopes.includes(needed) || scopes.includes("admin");
}

/** The path of a `sandbox://` URI; the core then checks it like any other. */
function decodePath(encoded: string): string {
  try {
    return encoded.split("/").map(decodeURIComponent).join("/");
  } catch {
    throw new WardenError("INVALID_REQUEST", "uri: not a valid sandbox:// file URI");
  }
}

/** A new MCP server with Warden's tools, acting as `options.userId`. */
export function createMcpServer(options: McpServerOptions): McpServer {
  const server = new McpServer(
    { name: "warden", title: "Warden code sandbox", version: VERSION },
    { instructions: INSTRUCTIONS },
  );
  const tools = [
    ...runTools(options),
    ...sandboxTools(options),
    ...fileTools(options),
    ...pauseTools(options),
  ];
  for (const tool of tools) {
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        inputSchema: tool.input,
        outputSchema: tool.output,
        annotations: { title: tool.title, ...tool.annotations },
      },
      async (args: Record<string, unknown>, extra: ToolExtra) => {
        try {
          if (!allowed(options.scopes, tool.scope))
            throw new WardenError("PERMISSION_DENIED", `this key lacks the ${tool.scope} scope`);
          return await tool.run(args, extra);
        } catch (error) {
          return errorResult(error, options.logger, tool.name);
        }
      },
    );
  }
  // Files named in results (`sandbox://<id>/<path>`) can be read back as resources.
  server.registerResource(
    "sandbox-file",
    new ResourceTemplate("sandbox://{sandbox_id}/{+path}", { list: undefined }),
    {
      title: "A file in a sandbox",
      description: "A file in a sandbox's /workspace, by sandbox_id and relative path.",
    },
    async (uri, variables) => {
      try {
        if (!allowed(options.scopes, "sessions"))
          throw new WardenError("PERMISSION_DENIED", "this key lacks the sessions scope");
        const id = String(variables.sandbox_id);
        const path = decodePath(String(variables.path));
        const bytes = await options.sessions.readFile(id, options.userId, path);
        return { contents: [fileResource(uri.href, path, bytes)] };
      } catch (error) {
        throw protocolError(error, options.logger);
      }
    },
  );
  // Artifacts named in results (`artifact://<execution or sandbox id>/<name>`), for their owner.
  server.registerResource(
    "artifact",
    new ResourceTemplate("artifact://{owner_id}/{+name}", { list: undefined }),
    {
      title: "An artifact",
      description:
        "A file a run left in /workspace/output, by its execution or sandbox id and name.",
    },
    async (uri, variables) => {
      try {
        if (!allowed(options.scopes, "execute") && !allowed(options.scopes, "sessions"))
          throw new WardenError(
            "PERMISSION_DENIED",
            "this key lacks the execute or sessions scope",
          );
        const name = decodePath(String(variables.name));
        const a = await options.service.artifacts.open(
          String(variables.owner_id),
          name,
          options.userId,
          false,
        );
        const content =
          a.mimeType.startsWith("text/") || a.mimeType === "application/json"
            ? { uri: uri.href, mimeType: a.mimeType, text: a.content.toString("utf8") }
            : { uri: uri.href, mimeType: a.mimeType, blob: a.content.toString("base64") };
        return { contents: [content] };
      } catch (error) {
        throw protocolError(error, options.logger);
      }
    },
  );
  return server;
}
