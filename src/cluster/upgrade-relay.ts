/**
 * A preview WebSocket through an API node: the Gate admitted the client's
 * upgrade; this sends it, signed, to the worker that holds the session, and
 * once the worker switches protocols, splices the two sockets (pipe() keeps
 * backpressure: a flood waits in kernel buffers, not here). The worker has
 * already checked and filtered the answer from inside the sandbox; a refusal
 * (any non-101) is passed on with its body, then the connection closes.
 */
import { request as httpRequest, STATUS_CODES, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Duplex } from "node:stream";
import type { HeaderMap } from "../http/preview-headers.js";
import { formatHead } from "../http/preview-headers.js";
import { DROPPED, upstreamError } from "./forward-parts.js";

/** DROPPED but the protocol asked for (Upgrade), and no body framing (an upgrade has no body). */
const RELAY_DROPPED = new Set([
  ...DROPPED.filter((name) => name !== "upgrade"),
  "content-length",
  "connection",
]);

/** From the signed request to the worker's response head. */
const HEAD_TIMEOUT_MS = 30_000;

export interface RelayOptions {
  raw: IncomingMessage;
  client: Duplex;
  head: Buffer;
  /** The worker's URL for this request (target included). */
  url: string;
  signed: Record<string, string>;
  workerId: string;
}

function headersOf(res: IncomingMessage): HeaderMap {
  const out: HeaderMap = {};
  for (const [name, value] of Object.entries(res.headers))
    if (value !== undefined) out[name] = value;
  return out;
}

export function relayUpgrade(o: RelayOptions): Promise<void> {
  const u = new URL(o.url);
  const headers: Record<string, string | string[]> = {};
  // A client's Content-Length or Transfer-Encoding would make the worker wait for a body.
  for (const [name, value] of Object.entries(o.raw.headers))
    if (value !== undefined && !RELAY_DROPPED.has(name)) headers[name] = value;
  const request = (u.protocol === "https:" ? httpsRequest : httpRequest)({
    hostname: u.hostname,
    port: u.port,
    method: o.raw.method ?? "GET",
    path: `${u.pathname}${u.search}`,
    headers: { ...headers, ...o.signed, connection: "Upgrade" },
    timeout: HEAD_TIMEOUT_MS,
  });
  return new Promise<void>((resolve, reject) => {
    request.on("upgrade", (res: IncomingMessage, upstream: Duplex, upHead: Buffer) => {
      request.setTimeout(0);
      upstream.on("error", () => upstream.destroy());
      if (o.client.destroyed) {
        upstream.destroy();
        return resolve();
      }
      o.client.write(formatHead(101, "Switching Protocols", headersOf(res)));
      if (upHead.length > 0) o.client.write(upHead);
      if (o.head.length > 0) upstream.write(o.head);
      upstream.pipe(o.client);
      o.client.pipe(upstream);
      upstream.on("close", () => o.client.destroy());
      o.client.on("close", () => upstream.destroy());
      resolve();
    });
    request.on("response", (res: IncomingMessage) => {
      const status = res.statusCode ?? 502;
      // The body goes on decoded and ends with the connection: no framing header of the worker's.
      const { "transfer-encoding": _chunked, "content-length": _length, ...rest } = headersOf(res);
      o.client.write(
        formatHead(status, STATUS_CODES[status] ?? "Unknown", { ...rest, connection: "close" }),
      );
      res.on("error", () => o.client.destroy());
      res.pipe(o.client);
      o.client.on("close", () => res.destroy());
      resolve();
    });
    request.on("timeout", () =>
      request.destroy(Object.assign(new Error("no answer"), { code: "HEAD_TIMEOUT" })),
    );
    request.on("error", (error) => reject(upstreamError(o.workerId, error)));
    o.client.on("close", () => request.destroy());
    request.end();
  });
}
