/**
 * The code interpreter's answer: newline-delimited JSON, written as it
 * happens. A client that stops reading must not make Warden hold its answer
 * without bound (docs/e2b.md), so, as for event streams (../sse.ts):
 * - `push` (a cell's output, as the kernel writes it) writes at once, and a
 *   client already more than MAX_UNSENT_BYTES behind is dropped — its socket
 *   destroyed, which aborts `signal` and so interrupts the cell;
 * - `write` (results, which sit in memory already and may be 16 MiB) writes
 *   one line in pieces, waiting for the socket between them; a client that
 *   takes nothing for STALL_MS is dropped.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { drainedOrDropped } from "../drain.js";
import { batched, jsonPieces } from "../json-pieces.js";

/** What a push may leave unsent for one client before it is dropped. */
export const MAX_UNSENT_BYTES = 4 * 1024 * 1024;
/** How long a pull write waits for a client that takes no bytes. */
export const STALL_MS = 60_000;
/** A keep-alive line when nothing was written for this long (the SDK skips them). */
const KEEPALIVE_MS = 15_000;

export interface LineStream {
  push(line: object): void;
  write(line: object): Promise<boolean>;
  end(): void;
  /** Aborted when the client goes away or is dropped (the cell it waits for is interrupted). */
  readonly signal: AbortSignal;
}

export function openLineStream(request: FastifyRequest, reply: FastifyReply): LineStream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "application/x-ndjson",
    "cache-control": "no-cache, no-transform",
    "x-request-id": request.id,
    "x-content-type-options": "nosniff",
  });
  const closed = new AbortController();
  res.on("close", () => closed.abort());
  const gone = (): boolean => closed.signal.aborted || res.destroyed || res.writableEnded;
  const drop = (why: string): void => {
    request.log.info({ unsentBytes: res.writableLength }, `interpreter client dropped: ${why}`);
    res.destroy();
  };
  /** A line is being written in pieces: nothing else may go between them. */
  let busy = false;
  let last = Date.now();
  const keepalive = setInterval(() => {
    if (!busy && !gone() && res.writableLength === 0 && Date.now() - last >= KEEPALIVE_MS)
      res.write('{"type":"keepalive"}\n');
  }, KEEPALIVE_MS / 3);
  res.on("close", () => clearInterval(keepalive));

  const drained = (): Promise<boolean> =>
    drainedOrDropped(res, closed.signal, STALL_MS, () => drop(`took no bytes for ${STALL_MS} ms`));

  return {
    push: (line) => {
      if (gone()) return;
      if (res.writableLength > MAX_UNSENT_BYTES) {
        drop(`more than ${MAX_UNSENT_BYTES} bytes unsent`);
        return;
      }
      last = Date.now();
      // Output pieces are at most 64 KiB of text from the agent: one write each.
      res.write(`${JSON.stringify(line)}\n`);
    },
    write: async (line) => {
      busy = true;
      try {
        for (const piece of batched(jsonPieces(line))) {
          if (gone()) return false;
          last = Date.now();
          if (!res.write(piece) && !(await drained())) return false;
        }
        if (gone()) return false;
        return res.write("\n") || (await drained());
      } finally {
        busy = false;
      }
    },
    end: () => {
      clearInterval(keepalive);
      if (!gone()) res.end();
    },
    signal: closed.signal,
  };
}
