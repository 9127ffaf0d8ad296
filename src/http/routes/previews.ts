/**
 * Web previews: `/v1/sessions/:id/ports/:port/...` reaches a server listening
 * on that port inside the session, over HTTP and WebSocket, for the session's
 * owner only. Each request gets its own connection, made by the session's
 * agent from inside (see src/sessions/preview.ts): no host port, and the
 * sandbox gains no network. What the server answers is hostile input: it is
 * parsed and bounded in ../preview-upstream.ts and filtered through the
 * allow-lists of ../preview-headers.ts on both paths.
 */
import { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { WardenError } from "../../errors.js";
import type { SessionManager } from "../../sessions/manager.js";
import type { Actor } from "../auth.js";
import { errorBody, statusOf, toWardenError } from "../errors.js";
import {
  formatHead,
  previewPrefix,
  requestHeaders,
  responseHeaders,
  switchHeaders,
} from "../preview-headers.js";
import { PREVIEW_IDLE_MS, PREVIEW_OWN, relayToPort } from "../preview-relay.js";
import { exchange } from "../preview-upstream.js";
import { Params } from "./sessions.js";
import { isPistonConnect, PISTON_CONNECT_PATH } from "./piston-connect.js";

const PortParams = Params.extend({
  port: z.coerce.number().int().min(1, "port: 1-65535").max(65_535, "port: 1-65535"),
});
const UPGRADE_PATH = /^\/v1\/sessions\/(sess_[0-9A-Z]{26})\/ports\/(\d{1,5})(\/[^?]*)?(\?.*)?$/;
/** An upgrade token is an HTTP token (RFC 9110), optionally with a version. */
const UPGRADE_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}(\/[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64})?$/;

/** Cluster API node: hands an admitted upgrade to the worker that holds its session. */
export type UpgradeRelay = (
  raw: IncomingMessage,
  client: Duplex,
  head: Buffer,
  actor: Actor,
  sessionId: string,
) => Promise<void>;

export const previewRoutes: FastifyPluginAsyncZod<{
  sessions: SessionManager;
  gate: { admitRaw(raw: IncomingMessage, scope: "sessions"): Actor | Promise<Actor> };
  relay?: UpgradeRelay | undefined;
}> = async (app, { sessions, gate, relay }) => {
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
    return reply.redirect(`${previewPrefix(id, port)}/`, 308);
  });
  app.all("/v1/sessions/:id/ports/:port/*", proxy, async (request, reply) => {
    const { id, port } = request.params;
    const prefix = previewPrefix(id, port);
    const socket = await sessions.openPort(id, request.actor!.userId, port);
    const url = request.raw.url ?? "";
    const path = url.startsWith(prefix) ? url.slice(prefix.length) : "/";
    return relayToPort(request, reply, socket, port, prefix, path);
  });

  app.server.on("upgrade", (raw: IncomingMessage, client: Duplex, head: Buffer) => {
    // piston-connect.ts owns that upgrade where it is served (not on an internal listener).
    if (isPistonConnect(raw.url) && app.hasRoute({ method: "GET", url: PISTON_CONNECT_PATH }))
      return;
    client.on("error", () => client.destroy());
    void upgrade(raw, client, head).catch((error: unknown) => {
      const e = toWardenError(error);
      const status = statusOf(e);
      const body = JSON.stringify(errorBody(e, "upgrade"));
      if (client.destroyed) return;
      client.end(
        formatHead(status, STATUS_CODES[status] ?? "Error", {
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(body)),
          connection: "close",
        }) + body,
      );
    });
  });

  /**
   * A WebSocket (or other upgrade) to a port inside: the request goes there
   * through the same strict exchange; a valid 101 is answered with Warden's own
   * head (the protocol's headers only), then bytes flow both ways with
   * backpressure; any other answer passes filtered, with its body.
   */
  async function upgrade(raw: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const match = UPGRADE_PATH.exec(raw.url ?? "");
    if (!match)
      throw new WardenError("NOT_FOUND", `no upgrade route ${(raw.url ?? "").split("?")[0]}`);
    const actor = await gate.admitRaw(raw, "sessions");
    const protocol = raw.headers.upgrade ?? "";
    if (!UPGRADE_TOKEN.test(protocol))
      throw new WardenError("INVALID_REQUEST", "upgrade: not a protocol token");
    const [, id = "", portText = "", path = "/", query = ""] = match;
    if (relay) return relay(raw, client, head, actor, id);
    const port = Number(portText);
    const prefix = previewPrefix(id, port);
    const socket = await sessions.openPort(id, actor.userId, port);
    socket.setTimeout(PREVIEW_IDLE_MS, () => socket.destroy());
    client.on("close", () => socket.destroy());
    const answer = await exchange({
      socket,
      port,
      method: raw.method ?? "GET",
      path: `${path}${query}`,
      headers: requestHeaders(raw.headers, port, prefix, true),
      upgrade: protocol,
    });
    if (answer.kind === "response") return refusal(answer.response, client, port, prefix, path);
    const upstream = answer.socket;
    client.write(
      formatHead(101, "Switching Protocols", {
        connection: "Upgrade",
        upgrade: protocol,
        ...switchHeaders(answer.response.headers),
      }),
    );
    if (answer.head.length > 0) client.write(answer.head);
    if (head.length > 0) upstream.write(head);
    // pipe() pauses the side whose reader is slow: a flood from inside waits in
    // the kernel's socket buffers, not in Warden's memory.
    upstream.pipe(client);
    client.pipe(upstream);
    upstream.on("close", () => client.destroy());
  }

  /** A non-101 answer to an upgrade: filtered like the plain path, then its body, then close. */
  function refusal(
    response: IncomingMessage,
    client: Duplex,
    port: number,
    prefix: string,
    path: string,
  ): void {
    const status = response.statusCode!;
    client.write(
      formatHead(status, STATUS_CODES[status] ?? "Unknown", {
        ...responseHeaders(response.headers, port, prefix, path),
        ...PREVIEW_OWN,
        connection: "close",
      }),
    );
    response.on("error", () => client.destroy());
    response.on("aborted", () => client.destroy());
    response.pipe(client);
  }
};
