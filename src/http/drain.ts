/**
 * Waiting for a slow client, bounded: every streamed answer (event streams,
 * the interpreter's NDJSON, Connect server streams) writes with backpressure
 * and must not wait without end for a client that reads nothing.
 */
import type { Writable } from "node:stream";

/**
 * Resolves true when `out` drains, false when `gone` aborts first. A client
 * that takes no bytes for `stallMs` is dropped: `drop` is called (it destroys
 * the socket) and the promise resolves false.
 */
export function drainedOrDropped(
  out: Writable,
  gone: AbortSignal,
  stallMs: number,
  drop: () => void,
): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      out.off("drain", onDrain);
      gone.removeEventListener("abort", onGone);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onGone = (): void => done(false);
    const timer = setTimeout(() => {
      drop();
      done(false);
    }, stallMs);
    out.on("drain", onDrain);
    gone.addEventListener("abort", onGone, { once: true });
  });
}
