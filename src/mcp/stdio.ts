/**
 * MCP over stdio: one client (the process that started us) on stdin and
 * stdout. stdout carries only the protocol; logs go to stderr. Resolves when
 * the client goes away (stdin ends, the transport closes) or on `stop()`.
 */
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { McpServerOptions } from "./context.js";
import { createMcpServer } from "./server.js";

export interface StdioSession {
  /** Resolves once the client has disconnected or `stop` was called. */
  closed: Promise<void>;
  stop(): Promise<void>;
}

export async function serveStdio(options: McpServerOptions): Promise<StdioSession> {
  const server = createMcpServer(options);
  const transport = new StdioServerTransport();
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let stopping: Promise<void> | undefined;
  // Closing the server aborts its in-flight tool calls (a run_code is killed).
  const stop = (): Promise<void> => {
    stopping ??= server
      .close()
      .catch((error: unknown) => options.logger.warn({ err: error }, "closing MCP server"))
      .finally(resolveClosed);
    return stopping;
  };
  server.server.onclose = () => void stop();
  // The SDK's stdio transport does not watch for end of input: a client that
  // exits closes our stdin, and that is the end of the session.
  process.stdin.once("end", () => void stop());
  process.stdin.once("close", () => void stop());
  await server.connect(transport);
  options.logger.info({ userId: options.userId }, "MCP server on stdio");
  return { closed, stop };
}
