/**
 * MCP over streamable HTTP at `/mcp`, stateless: every POST gets a new MCP
 * server and a new transport, acting as the request's key, so no instance is
 * ever shared between clients (sandbox state lives behind `sandbox_id`).
 * The Gate has already checked the bearer key; tools check their own scope.
 */
import type { AddressInfo } from "node:net";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { WardenError } from "../../errors.js";
import { createMcpServer, type McpServerOptions } from "../../mcp/server.js";
import type { RefusalLog } from "../refusals.js";

/** What `/mcp` needs: the core services each per-request MCP server is made with. */
export type McpRoutesOptions = Pick<
  McpServerOptions,
  "service" | "sessions" | "registry" | "config" | "logger" | "analyzer"
> & {
  /** Where refusals are audited: aggregated per address, so a flood writes a summary, not a row each. */
  refusals: RefusalLog;
  /** A worker's internal listener: the API node checked Host and Origin (its own). */
  hostChecked?: boolean;
};

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

type JsonRpcMessage = { id?: unknown; method?: unknown; params?: { requestId?: unknown } };

/** The JSON-RPC messages of a body (one, or a batch). */
function messagesOf(body: unknown): JsonRpcMessage[] {
  return (Array.isArray(body) ? body : [body]).filter(
    (m): m is JsonRpcMessage => typeof m === "object" && m !== null,
  );
}

export const mcpRoutes: FastifyPluginAsync<McpRoutesOptions> = async (app, o) => {
  const tls = o.config.server.tls !== undefined;
  /**
   * Calls in progress, by key and JSON-RPC id. A client cancels a call with
   * `notifications/cancelled` in a POST of its own, which a stateless server
   * cannot tie to the call; this map can (only the same key may cancel).
   */
  const inFlight = new Map<string, Set<() => void>>();
  const callKey = (owner: string, id: unknown): string => `${owner} ${JSON.stringify(id)}`;

  /** Hosts compare without case and without a default port (clients leave :443 and :80 out). */
  const normalHost = (host: string): string => host.toLowerCase().replace(/:(80|443)$/, "");

  /** Host header values we answer to: the listen address and loopback names on our port, plus configured ones. */
  const allowedHosts = (): Set<string> => {
    const port = (app.server.address() as AddressInfo | null)?.port ?? o.config.server.port;
    const listen = o.config.server.host.includes(":")
      ? `[${o.config.server.host}]`
      : o.config.server.host;
    return new Set(
      [
        ...[...LOOPBACK_NAMES, listen].map((name) => `${name}:${port}`),
        ...o.config.server.allowedHosts,
      ].map(normalHost),
    );
  };

  /**
   * DNS-rebinding protection: a web page that got a name of its own to
   * resolve to 127.0.0.1 still sends its own Host and Origin, so both must
   * be ours. Clients other than browsers send no Origin.
   */
  const checkHostAndOrigin = async (request: FastifyRequest): Promise<void> => {
    if (o.hostChecked) return;
    const hosts = allowedHosts();
    const host = request.headers.host ?? "";
    const origin = request.headers.origin;
    let why: string | null = null;
    if (!hosts.has(normalHost(host))) why = `Host ${JSON.stringify(host)} is not this server`;
    else if (origin !== undefined && !o.config.server.corsOrigins.includes(origin)) {
      const originHost = URL.canParse(origin) ? new URL(origin).host : "";
      if (!hosts.has(normalHost(originHost)))
        why = `Origin ${JSON.stringify(origin)} is not allowed`;
    }
    if (why === null) return;
    // Through the refusal log, like a bad key: a page in a browser can send
    // these at line rate, and each must not cost a row in the audit table.
    o.refusals.record(request.ip, {
      userId: request.actor?.userId,
      level: "warn",
      event: "forbidden",
      message: `/mcp: ${why}`,
      data: { ip: request.ip, requestId: request.id },
    });
    throw new WardenError("PERMISSION_DENIED", `${why} (DNS-rebinding protection)`);
  };

  app.post(
    "/mcp",
    {
      config: { scope: "any" },
      schema: { hide: true },
      onRequest: checkHostAndOrigin,
    },
    async (request, reply) => {
      const actor = request.actor!;
      const server = createMcpServer({
        service: o.service,
        sessions: o.sessions,
        registry: o.registry,
        config: o.config,
        logger: o.logger,
        analyzer: o.analyzer,
        // The key's own static-analysis mode, exactly as POST /v1/executions applies it.
        policy: actor.key?.policy,
        userId: actor.userId,
        scopes: actor.key?.scopes ?? [],
        keyId: actor.key?.id,
        networkAllow: actor.key?.networkAllow,
        isolation: actor.key,
        publicUrl:
          o.config.server.publicUrl ?? `${tls ? "https" : "http"}://${request.headers.host}`,
      });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      // The response is the whole exchange: when it ends (or the client hangs
      // up, or cancels), the server goes, and closing it aborts its calls (a
      // run is killed).
      const close = (): void => {
        void transport.close();
        void server.close();
      };
      const owner = actor.key?.id ?? actor.userId;
      const messages = messagesOf(request.body);
      for (const m of messages)
        if (m.method === "notifications/cancelled")
          for (const cancel of inFlight.get(callKey(owner, m.params?.requestId)) ?? []) cancel();
      const calls = messages
        .filter((m) => typeof m.method === "string" && m.id !== undefined)
        .map((m) => callKey(owner, m.id));
      for (const key of calls) inFlight.set(key, (inFlight.get(key) ?? new Set()).add(close));
      reply.hijack();
      reply.raw.on("close", () => {
        for (const key of calls) {
          inFlight.get(key)?.delete(close);
          if (inFlight.get(key)?.size === 0) inFlight.delete(key);
        }
        close();
      });
      try {
        await server.connect(transport);
        await transport.handleRequest(request.raw, reply.raw, request.body);
      } catch (error) {
        // Hijacked: Fastify's error handler can no longer answer for us.
        request.log.error({ err: error }, "MCP request failed");
        if (!reply.raw.headersSent)
          reply.raw.writeHead(500, { "content-type": "application/json" }).end(
            JSON.stringify({
              jsonrpc: "2.0",
              error: { code: -32603, message: "internal error" },
              id: null,
            }),
          );
      }
    },
  );

  // Stateless: no server-initiated stream to open (GET), no session to end (DELETE).
  const notAllowed = async (_request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await reply
      .status(405)
      .header("Allow", "POST")
      .send({
        jsonrpc: "2.0",
        error: {
          code: -32000,
          message: "Method not allowed: this server is stateless; POST only.",
        },
        id: null,
      });
  };
  for (const method of ["GET", "DELETE"] as const)
    app.route({
      method,
      url: "/mcp",
      config: { scope: "any" },
      schema: { hide: true },
      onRequest: checkHostAndOrigin,
      handler: notAllowed,
    });
};
