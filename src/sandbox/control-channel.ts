/**
 * How Warden talks to a sandbox's init (native/warden-init.c): it reads init's
 * status lines (`ready`, `exit N`, `signal N`, `error ...`) and sends it the
 * run request (init-request.ts), then closes its half. In the namespaces tier
 * these are the helper's fds 4 and 6; in the gVisor tier one Unix socket that
 * init connects to from inside the container (gvisor/control.ts).
 */
import type { Duplex, Readable, Writable } from "node:stream";

export interface ControlChannel {
  /** Calls `onLine` with each status line init writes, in order. */
  lines(onLine: (line: string) => void): void;
  /** Sends the request and closes Warden's write half: init then runs the program. */
  send(request: Buffer): void;
  /** Gives up without a request: init sees the end and stops. */
  drop(): void;
  /** Resolves once init's side has ended (or can no longer come). */
  readonly ended: Promise<void>;
}

/** init's status lines are a few bytes; anything longer is not init talking. */
export const MAX_STATUS_LINE = 512;

/** Splits `input` into lines, strictly: a line over `max` bytes ends the stream. */
export function readLines(
  input: Readable,
  onLine: (line: string) => void,
  max = MAX_STATUS_LINE,
): void {
  let pending = "";
  input.setEncoding("latin1");
  input.on("data", (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
    if (pending.length > max) {
      pending = "";
      input.destroy();
    }
  });
}

function streamEnded(s: Readable): Promise<void> {
  return new Promise<void>((resolve) => {
    s.once("end", () => resolve());
    s.once("close", () => resolve());
  });
}

/** The namespaces tier: status on one fd, the request on another. */
export function fdChannel(status: Readable, request: Writable): ControlChannel {
  request.on("error", () => undefined); // init gone before reading: its end says why
  const ended = streamEnded(status);
  return {
    lines: (onLine) => readLines(status, onLine),
    send: (data) => request.end(data),
    drop: () => request.destroy(),
    ended,
  };
}

/**
 * The gVisor tier: init's one connection, once it has been made. `connection`
 * rejects (or never resolves before the helper's end) when init never connects.
 */
export function socketChannel(connection: Promise<Duplex>): ControlChannel {
  const ended = connection.then(
    (socket) => streamEnded(socket),
    () => undefined,
  );
  let dropped = false;
  return {
    lines: (onLine) =>
      void connection.then(
        (socket) => readLines(socket, onLine),
        () => undefined,
      ),
    send: (data) =>
      void connection.then(
        (socket) => (dropped ? undefined : socket.end(data)),
        () => undefined,
      ),
    drop: () => {
      dropped = true;
      void connection.then(
        (socket) => socket.destroy(),
        () => undefined,
      );
    },
    ended,
  };
}
