/**
 * `warden mcp`: Warden as an MCP server on stdio, for one local client (an
 * agent or IDE that starts it). It runs its own embedded Warden acting as one
 * local user; when the client goes away every sandbox it made is destroyed
 * and the process exits.
 *
 * Data dir: one Warden per data dir (a pid lock). Unless one is named
 * (--data-dir, $WARDEN_DATA_DIR, or the config file), `warden mcp` uses a
 * private temporary one, removed on exit, so it never clashes with a
 * `warden serve` in the same directory.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONFIG_ENV } from "../config/env.js";
import { ConfigSchema } from "../config/schema.js";
import { WardenError } from "../errors.js";
import { openWarden, type EmbeddedWarden } from "../warden.js";
import { serveStdio } from "../mcp/stdio.js";
import { USER_ID_PATTERN } from "../store/keys.js";
import { createContext, type GlobalOptions } from "./context.js";

export interface McpOptions extends GlobalOptions {
  /** @default "mcp-local" */
  user?: string;
}

export const DEFAULT_MCP_USER = "mcp-local";
/** Time running executions get to finish once the client has gone. */
const SHUTDOWN_GRACE_MS = 1000;

export async function mcpCommand(options: McpOptions): Promise<number> {
  const userId = options.user ?? DEFAULT_MCP_USER;
  if (!USER_ID_PATTERN.test(userId))
    throw new WardenError("INVALID_REQUEST", `--user: must match ${USER_ID_PATTERN.source}`);
  const named =
    options.dataDir !== undefined ||
    Boolean(process.env[CONFIG_ENV.dataDir]) ||
    createContext(options).config.dataDir !== ConfigSchema.parse({}).dataDir;
  const privateDir = named ? undefined : mkdtempSync(join(tmpdir(), "warden-mcp-"));
  const { config, logger } = createContext({ ...options, dataDir: options.dataDir ?? privateDir });
  let warden: EmbeddedWarden;
  try {
    warden = await openWarden({ config, logger });
  } catch (error) {
    if (privateDir) rmSync(privateDir, { recursive: true, force: true });
    if (error instanceof WardenError && error.message.startsWith("another Warden"))
      throw new WardenError(
        "INVALID_REQUEST",
        `${error.message}: give warden mcp a data dir of its own (--data-dir), or none for a private temporary one, or use that service's /mcp over HTTP`,
      );
    if (error instanceof WardenError) await refuseOverStdio(error);
    throw error;
  }
  try {
    const session = await serveStdio({
      service: warden,
      sessions: warden.sessions,
      registry: warden.registry,
      config,
      logger,
      analyzer: warden.analyzer,
      // One local user, no key: the server's mode.
      policy: config.policy.mode,
      userId,
    });
    const stop = (): void => void session.stop();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    await session.closed;
    process.off("SIGTERM", stop);
    process.off("SIGINT", stop);
    logger.info("MCP client gone; destroying its sandboxes");
  } finally {
    // Ends every session (sandbox) this process made and kills what still runs.
    await warden.shutdown(SHUTDOWN_GRACE_MS);
    if (privateDir) rmSync(privateDir, { recursive: true, force: true });
  }
  return 0;
}

/** How long a refused `warden mcp` waits for the client's first requests to answer them. */
const REFUSAL_WINDOW_MS = 3000;

/**
 * Warden cannot start (not root, no isolation...): an MCP client that only
 * saw the process exit would show "disconnected". So the reason also goes
 * back in the protocol: every request that arrives in the next few seconds
 * (initialize first) gets a JSON-RPC error carrying it. main() then prints
 * it on stderr and exits non-zero.
 */
async function refuseOverStdio(error: WardenError): Promise<void> {
  if (process.stdin.isTTY) return;
  const message = `warden mcp cannot run: ${error.code}: ${error.message}`;
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const timer = setTimeout(() => lines.close(), REFUSAL_WINDOW_MS);
  try {
    for await (const line of lines) {
      let id: unknown;
      try {
        id = (JSON.parse(line) as { id?: unknown }).id;
      } catch {
        continue;
      }
      if (typeof id !== "string" && typeof id !== "number") continue;
      process.stdout.write(
        `${JSON.stringify({ jsonrpc: "2.0", id, error: { code: -32603, message } })}\n`,
      );
    }
  } finally {
    clearTimeout(timer);
  }
}
