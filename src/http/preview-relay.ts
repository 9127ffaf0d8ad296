/**
 * One plain HTTP request relayed to a port inside a session and its answer
 * back: the web preview route (routes/previews.ts) and E2B's getHost
 * (e2b/host-routing.ts) are the same relay under two URLs. The request goes
 * through the strict exchange of ./preview-upstream.ts and the header
 * allow-lists of ./preview-headers.ts both ways.
 */
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import type { FastifyReply, FastifyRequest } from "fastify";
import { WardenError } from "../errors.js";
import { PREVIEW_CSP, requestHeaders, responseHeaders } from "./preview-headers.js";
import { exchange } from "./preview-upstream.js";

/** A preview connection with no traffic this long is closed. */
export const PREVIEW_IDLE_MS = 5 * 60_000;

/** Headers Warden adds to every answer a preview passes on (helmet covers the plain path's others). */
export const PREVIEW_OWN = {
  "content-security-policy": PREVIEW_CSP,
  "x-content-type-options": "nosniff",
};

/**
 * Relays `request` over `socket` (a connection to `port` inside the session)
 * and sends the answer. `prefix` is where the app sits in Warden's URLs (""
 * when it is served at the root of its own host name); `path` is the
 * request's path below it.
 */
export async function relayToPort(
  request: FastifyRequest,
  reply: FastifyReply,
  socket: Socket,
  port: number,
  prefix: string,
  path: string,
): Promise<FastifyReply> {
  socket.setTimeout(PREVIEW_IDLE_MS, () => socket.destroy());
  // A client that hangs up ends the connection inside the session too.
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) socket.destroy();
  });
  const body = request.body instanceof Readable ? request.body : undefined;
  const headers = requestHeaders(request.headers, port, prefix, false);
  // No body goes in, so none may be announced (the server would wait for it).
  if (!body) delete headers["content-length"];
  const answer = await exchange({ socket, port, method: request.method, path, headers, body });
  if (answer.kind !== "response") throw new WardenError("INTERNAL", "preview: unexpected switch");
  const { response } = answer;
  // A body cut short (abrupt close, bad chunk) ends the client's response as
  // an error too, never as a clean but truncated one.
  response.on("error", () => reply.raw.destroy());
  response.on("aborted", () => reply.raw.destroy());
  void reply.status(response.statusCode!);
  void reply.headers({ ...responseHeaders(response.headers, port, prefix, path), ...PREVIEW_OWN });
  return reply.send(response);
}
