/**
 * Server-Sent Events: one helper for every streamed response (executions,
 * sessions). Every event carries an `id:`; a client that reconnects with
 * `Last-Event-ID` gets only what came after it.
 *
 * A client that opens a stream and stops reading must not make Warden
 * buffer for it without bound. Two ways to write, both bounded:
 * - `write` (pull): waits for the socket to drain before the next piece, so a
 *   slow client costs one socket buffer; one that takes no bytes for
 *   STALL_MS is dropped. Used where the events already sit in memory (an
 *   execution's output log).
 * - `send` (push): writes at once; a client already more than
 *   `MAX_UNSENT_BYTES` behind is dropped (its socket destroyed). Dropping a
 *   reader never touches what it was reading.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { drainedOrDropped } from "./drain.js";
import { jsonPieces } from "./json-pieces.js";

const HEARTBEAT_MS = 15_000;
/** How long a pull stream waits for a client that takes no bytes before dropping it. */
export const STALL_MS = 60_000;
/** What a push stream may hold unsent for one client before dropping it. */
export const MAX_UNSENT_BYTES = 8 * 1024 * 1024;
/** Pieces of one event are gathered up to this size before a socket write. */
const WRITE_BATCH_CHARS = 64 * 1024;

export interface EventStream {
  /**
   * Push an event now. Without `id` the stream numbers its events 1, 2, 3…
   * and leaves out those up to the client's numeric `Last-Event-ID`.
   */
  send: (event: string, data: unknown, id?: string) => void;
  /** Pull: resolves once the socket took the event; false when the client is gone. */
  write: (event: string, data: unknown, id: string) => Promise<boolean>;
  end: () => void;
  /** Called once when the client goes away (or the stream ends). */
  onClose: (listener: () => void) => void;
  /** Aborted when the client goes away (or the stream ends). */
  readonly signal: AbortSignal;
  /** The `Last-Event-ID` the client reconnected with, if any. */
  readonly lastEventId: string | undefined;
}

/** Does the client ask for an event stream rather than one JSON answer? */
export function wantsEventStream(request: FastifyRequest): boolean {
  return (request.headers.accept ?? "").includes("text/event-stream");
}

/** The client's `Last-Event-ID` (one header value, at most 128 characters), if any. */
export function lastEventId(request: FastifyRequest): string | undefined {
  const value = request.headers["last-event-id"];
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text === "" ? undefined : text.slice(0, 128);
}

/** Takes the response over and opens an event stream with a keep-alive comment every 15 s. */
export function openEventStream(request: FastifyRequest, reply: FastifyReply): EventStream {
  const resumeAfter = lastEventId(request);
  const resumeSeq = resumeAfter && /^\d{1,15}$/.test(resumeAfter) ? Number(resumeAfter) : 0;
  const log = request.log;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-request-id": request.id,
    "x-content-type-options": "nosniff",
  });
  const closed = new AbortController();
  const gone = (): boolean => closed.signal.aborted || res.destroyed || res.writableEnded;
  // A keep-alive is only worth sending to a client that keeps up.
  const heartbeat = setInterval(() => {
    if (!gone() && res.writableLength === 0) res.write(": keep-alive\n\n");
  }, HEARTBEAT_MS);
  res.on("close", () => {
    clearInterval(heartbeat);
    closed.abort();
  });
  const drop = (why: string): void => {
    log.info({ unsentBytes: res.writableLength }, `event stream client dropped: ${why}`);
    res.destroy();
  };
  /** Resolves true on 'drain', false on close or after STALL_MS without one (then drops). */
  const drained = (): Promise<boolean> =>
    drainedOrDropped(res, closed.signal, STALL_MS, () => drop(`took no bytes for ${STALL_MS} ms`));
  let seq = 0;

  return {
    send: (event, data, id) => {
      if (id === undefined) {
        id = String(++seq);
        if (seq <= resumeSeq) return; // the client had it before reconnecting
      }
      if (gone()) return;
      if (res.writableLength > MAX_UNSENT_BYTES) {
        drop(`more than ${MAX_UNSENT_BYTES} bytes unsent`);
        return;
      }
      res.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    write: async (event, data, id) => {
      let batch = `id: ${id}\nevent: ${event}\ndata: `;
      const flush = async (): Promise<boolean> => {
        if (gone()) return false;
        const more = res.write(batch);
        batch = "";
        return more || (await drained());
      };
      // Pieces are made as they are written: the event is never held whole, escaped.
      for (const piece of jsonPieces(data)) {
        batch += piece;
        if (batch.length >= WRITE_BATCH_CHARS && !(await flush())) return false;
      }
      batch += "\n\n";
      return (await flush()) && !gone();
    },
    end: () => {
      clearInterval(heartbeat);
      res.end();
    },
    onClose: (listener) => res.on("close", listener),
    signal: closed.signal,
    lastEventId: resumeAfter,
  };
}
