/**
 * Web previews: `/v1/sessions/:id/ports/:port/...` reaches a server listening
 * on that port inside the session, over HTTP and WebSocket, for the session's
 * owner only. Each request gets its own connection, made by the session's
 * agent from inside (see src/sessions/preview.ts): no host port, and the
 * sandbox gains no network.
 */
import {
  request as httpRequest,
  STATUS_CODES,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from "node:http";
import { Readable, type Duplex } from "node:stream";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { WardenError } from "../../errors.js";
import type { SessionManager } from "../../sessions/manager.js";
import type { Gate } from "../auth.js";
import { errorBody, statusOf, toWardenError } from "../errors.js";
import { Params } from "./sessions.js";

const PortParams = Params.extend({
  port: z.coerce.number().int().min(1, "port: 1-65535").max(65_535, "port: 1-65535"),
});
const UPGRADE_PATH = /^\/v1\/sessions\/(sess_[0-9A-Z]{26})\/ports\/(\d{1,5})(\/[^?]*)?(\?.*)?$/;

/**
 * Hop-by-hop headers and Warden's own credentials never cross the proxy; nor do
 * cookies: every preview shares Warden's origin, so a cookie one session set
 * would reach every other user's previews.
 */
const DROPPED = new Set([
  "authorization",
  "cookie",
  "connection",
  "host",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** What a previewed server may not say on Warden's origin. */
const DROPPED_FROM_RESPONSE = new Set([
  ...DROPPED,
  "set-cookie",
  "clear-site-data",
  "strict-transport-security",
  "content-security-policy",
]);

/** A preview connection with no traffic this long is closed. */
const IDLE_MS = 5 * 60_000;

/**
 * A previewed page is the session's content served from Warden's origin. The
 * CSP sandbox gives it an opaque origin, so its scripts cannot act as Warden's
 * pages (read their storage, call the API with the viewer's credentials).
 */
const PREVIEW_CSP =
  "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads; frame-ancestors 'self'";

function prefixOf(id: string, port: number): string {
  return `/v1/sessions/${id}/ports/${port}`;
}

/** The request headers to send inside: ours dropped, Host the session's own. */
function forwardHeaders(headers: IncomingHttpHeaders, port: number, prefix: string) {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !DROPPED.has(name)) out[name] = value;
  out.host = `127.0.0.1:${port}`;
  out["x-forwarded-prefix"] = prefix;
  return out;
}

export const previewRoutes: FastifyPluginAsyncZod<{
  sessions: SessionManager;
  gate: Gate;
}> = async (app, { sessions, gate }) => {
  // Bodies pass through untouched, whatever their type (this plugin's routes only).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_request, payload, done) => done(null, payload));

  const proxy = {
    config: { scope: "sessions" as const },
    schema: {
      summary: "Web preview: a server listening on a port inside the session (owner only)",
      params: PortParams.extend({ "*": z.string().optional() }),
    },
  };
  app.all("/v1/sessions/:id/ports/:port", proxy, async (request, reply) => {
    const { id, port } = request.params;
    return reply.redirect(`${prefixOf(id, port)}/`, 308);
  });
  app.all("/v1/sessions/:id/ports/:port/*", proxy, async (request, reply) => {
    const { id, port } = request.params;
    const prefix = prefixOf(id, port);
    const socket = await sessions.openPort(id, request.actor!.userId, port);
    const url = request.raw.url ?? "";
    const path = url.startsWith(prefix) ? url.slice(prefix.length) : "/";
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    // A client that hangs up ends the connection inside the session too.
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) socket.destroy();
    });
    return new Promise((resolve, reject) => {
      const upstream = httpRequest({
        createConnection: () => socket,
        method: request.method,
        path,
        headers: forwardHeaders(request.headers, port, prefix),
      });
      // The relay hands the connection over paused; resume once the client reads it.
      upstream.on("socket", (s) => s.resume());
      upstream.on("response", (response) => {
        void reply.status(response.statusCode ?? 502);
        for (const [name, value] of Object.entries(response.headers))
          if (value !== undefined && !DROPPED_FROM_RESPONSE.has(name))
            void reply.header(name, value);
        void reply.header("content-security-policy", PREVIEW_CSP);
        resolve(reply.send(response));
      });
      upstream.on("error", (error) => {
        socket.destroy();
        reject(new WardenError("ECONNRESET", `port ${port}: ${error.message}`));
      });
      if (request.body instanceof Readable) request.body.pipe(upstream);
      else upstream.end();
    });
  });

  app.server.on("upgrade", (raw: IncomingMessage, client: Duplex, head: Buffer) => {
    client.on("error", () => client.destroy());
    void upgrade(raw, client, head).catch((error: unknown) => {
      const e = toWardenError(error);
      const status = statusOf(e);
      const body = JSON.stringify(errorBody(e, "upgrade"));
      client.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
  });

  /** A WebSocket (or other upgrade) to a port inside: the request head is replayed there, then bytes flow both ways. */
  async function upgrade(raw: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const match = UPGRADE_PATH.exec(raw.url ?? "");
    if (!match)
      throw new WardenError("NOT_FOUND", `no upgrade route ${(raw.url ?? "").split("?")[0]}`);
    const actor = gate.admitRaw(raw, "sessions");
    const [, id = "", portText = "", path = "/", query = ""] = match;
    const port = Number(portText);
    const upstream = await sessions.openPort(id, actor.userId, port);
    const lines = [`${raw.method ?? "GET"} ${path}${query} HTTP/1.1`];
    for (let i = 0; i + 1 < raw.rawHeaders.length; i += 2) {
      const name = raw.rawHeaders[i]!;
      const lower = name.toLowerCase();
      // Connection and Upgrade stay: they are the upgrade.
      if (lower === "authorization" || lower === "host" || lower === "cookie") continue;
      lines.push(`${name}: ${raw.rawHeaders[i + 1]}`);
    }
    lines.push(`Host: 127.0.0.1:${port}`, `X-Forwarded-Prefix: ${prefixOf(id, port)}`);
    upstream.setTimeout(IDLE_MS, () => upstream.destroy());
    upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
    upstream.on("error", () => client.destroy());
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
  }
};
