/**
 * The answer side of a Connect server stream: envelopes written to the raw
 * response with backpressure, keepalive pings in silences, one end envelope.
 * A client that reads nothing holds at most HIGH_WATER unsent bytes here
 * (send waits for it), and is dropped after STALL_MS without progress.
 */
import type { ServerResponse } from "node:http";
import type { FastifyRequest } from "fastify";
import { drainedOrDropped } from "../drain.js";
import { END_STREAM, envelope } from "./envelope.js";

/** Unsent bytes a stream may hold for a slow client before send() waits for it. */
export const HIGH_WATER = 1024 * 1024;
/** A client that takes nothing for this long is dropped. */
export const STALL_MS = 30_000;

export interface StreamOut {
  /** Writes one message; resolves once the client has room for more (or is gone). */
  send: (msg: unknown) => Promise<void>;
  /** Writes the end-of-stream envelope (if the client is still there) and stops the pings. */
  end: (endStream: unknown) => void;
}

function keepaliveSeconds(request: FastifyRequest): number | null {
  const v = request.headers["keepalive-ping-interval"];
  return typeof v === "string" && /^\d{1,5}$/.test(v) && Number(v) > 0 ? Number(v) : null;
}

export function openStream(
  req: FastifyRequest,
  res: ServerResponse,
  gone: AbortSignal,
  keepalive: unknown,
): StreamOut {
  res.writeHead(200, { "content-type": "application/connect+json", "x-request-id": req.id });
  res.flushHeaders();
  const alive = (): boolean => !gone.aborted && !res.destroyed && !res.writableEnded;
  const pingS = keepaliveSeconds(req);
  let lastSent = Date.now();
  const pinger =
    pingS && keepalive !== undefined
      ? setInterval(
          () => {
            if (alive() && Date.now() - lastSent >= pingS * 1000 && res.writableLength === 0) {
              res.write(envelope(0, keepalive));
              lastSent = Date.now();
            }
          },
          Math.min(pingS * 1000, 10_000),
        )
      : null;
  pinger?.unref();
  const stop = (): void => {
    if (pinger) clearInterval(pinger);
  };
  // The pings stop with the client, not only when the handler returns.
  gone.addEventListener("abort", stop, { once: true });
  return {
    send: async (msg) => {
      if (!alive()) return;
      res.write(envelope(0, msg));
      lastSent = Date.now();
      // A client that takes nothing for STALL_MS is dropped.
      if (res.writableLength > HIGH_WATER)
        await drainedOrDropped(res, gone, STALL_MS, () => res.destroy());
    },
    end: (endStream) => {
      stop();
      gone.removeEventListener("abort", stop);
      // Written after a deadline cut-off too (that aborts `gone`); not to a closed socket.
      if (!res.destroyed && !res.writableEnded) res.end(envelope(END_STREAM, endStream));
    },
  };
}
