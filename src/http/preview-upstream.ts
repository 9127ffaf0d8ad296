/**
 * One HTTP exchange with a server inside a session, over the connection the
 * session's agent dialled (src/sessions/preview.ts). That server is the
 * sandbox's code, so its answer is hostile input: it is read by Node's strict
 * parser (llhttp, no lenient flags) with a bound on the head's bytes, its count
 * of headers and the time it takes to arrive, and then checked again (status
 * range, upgrade token) before anything of it is used. Every way it can fail
 * becomes a coded WardenError; nothing it sends can throw elsewhere.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { WardenError } from "../errors.js";
import type { HeaderMap } from "./preview-headers.js";

/** Bytes of a response head (status line and headers), as Node counts them. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Headers in one response head; real servers send a few dozen. */
export const MAX_HEADERS = 100;
/**
 * From the end of the request to the end of the response head. Also bounds a
 * stream of 1xx interim answers, which Node reads without end otherwise.
 */
export const HEAD_TIMEOUT_MS = 30_000;

export type UpstreamAnswer =
  | { kind: "response"; response: IncomingMessage }
  | { kind: "switch"; response: IncomingMessage; socket: Socket; head: Buffer };

export interface ExchangeOptions {
  socket: Socket;
  port: number;
  method: string;
  path: string;
  headers: HeaderMap;
  /** The protocol the client asked to switch to; absent on the plain path. */
  upgrade?: string;
  body?: Readable;
}

/** Parse errors of llhttp (HPE_*) mean the answer was not HTTP; anything else, that the connection failed. */
function classify(error: NodeJS.ErrnoException, port: number): WardenError {
  if (error instanceof WardenError) return error;
  if (typeof error.code === "string" && error.code.startsWith("HPE_"))
    return invalid(port, error.message.replace(/^Parse Error: /, "").toLowerCase());
  return new WardenError(
    "UPSTREAM_UNAVAILABLE",
    `port ${port}: the connection closed before an answer`,
  );
}

function invalid(port: number, why: string): WardenError {
  return new WardenError(
    "UPSTREAM_INVALID",
    `port ${port}: the server's answer is not valid HTTP (${why})`,
  );
}

/** Sends the request and waits (bounded) for a validated response head. */
export function exchange(o: ExchangeOptions): Promise<UpstreamAnswer> {
  const { socket, port } = o;
  // Node's client removes its own listeners on an upgrade; this one stays.
  socket.on("error", () => socket.destroy());
  return new Promise<UpstreamAnswer>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (error: WardenError | null, answer?: UpstreamAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        socket.destroy();
        reject(error);
      } else resolve(answer!);
    };
    const request = httpRequest({
      createConnection: () => socket,
      method: o.method,
      path: o.path,
      headers: o.headers,
      setHost: false,
      maxHeaderSize: MAX_HEAD_BYTES,
      insecureHTTPParser: false,
    });
    // Node stops collecting headers past this count; the check below refuses the answer.
    request.maxHeadersCount = MAX_HEADERS + 1;
    // The relay hands the connection over paused; resume it once Node reads it.
    request.on("socket", (s) => s.resume());
    request.on("finish", () => {
      timer = setTimeout(
        () =>
          settle(
            new WardenError(
              "UPSTREAM_TIMEOUT",
              `port ${port}: no complete answer within ${HEAD_TIMEOUT_MS / 1000} s`,
            ),
          ),
        HEAD_TIMEOUT_MS,
      );
    });
    const check = (response: IncomingMessage): string | null => {
      if (response.rawHeaders.length / 2 > MAX_HEADERS) return `more than ${MAX_HEADERS} headers`;
      return null;
    };
    request.on("response", (response) => {
      const status = response.statusCode ?? 0;
      // 1xx other than 101 are interim (Node reads past them); 6xx-9xx and <100 are not statuses.
      const why = status < 200 || status > 599 ? `status ${status}` : check(response);
      if (why) return settle(invalid(port, why));
      response.on("error", () => socket.destroy());
      // A body broken in the same packet as the head (a bad first chunk) fails
      // the request in this tick: wait one turn so that is a clean 502, not a
      // response cut off before its head went out.
      setImmediate(() => settle(null, { kind: "response", response }));
    });
    request.on("upgrade", (response, upgraded: Socket, head: Buffer) => {
      const offered = String(response.headers.upgrade ?? "").toLowerCase();
      const why =
        o.upgrade === undefined
          ? "101 to a request that asked for no upgrade"
          : response.statusCode !== 101
            ? `status ${response.statusCode}`
            : offered !== o.upgrade.toLowerCase()
              ? `switched to "${offered.slice(0, 40)}", not "${o.upgrade.slice(0, 40)}"`
              : check(response);
      if (why) return settle(invalid(port, why));
      settle(null, { kind: "switch", response, socket: upgraded, head });
    });
    request.on("error", (error) => settle(classify(error, port)));
    request.on("close", () =>
      settle(
        new WardenError(
          "UPSTREAM_UNAVAILABLE",
          `port ${port}: the connection closed before an answer`,
        ),
      ),
    );
    if (o.body) {
      o.body.on("error", () => request.destroy());
      o.body.pipe(request);
    } else request.end();
  });
}
