/**
 * A raw TCP client (node:net) for attacks no HTTP library will send: slow
 * bytes, pipelined floods, oversized or broken request heads.
 */
import { connect as netConnect, type Socket } from "node:net";

export interface RawClient {
  socket: Socket;
  /** Everything received so far. */
  received(): string;
  /** Resolves when the server (or we) closed the connection. */
  closed: Promise<void>;
  isClosed(): boolean;
  write(data: string | Buffer): void;
  close(): void;
}

/** Opens a connection to `url`'s host and port, from `localAddress` when given (127.0.0.x). */
export async function rawConnect(url: string, localAddress?: string): Promise<RawClient> {
  const { hostname, port } = new URL(url);
  const socket = netConnect({ host: hostname, port: Number(port), localAddress });
  const chunks: Buffer[] = [];
  let closed = false;
  const closedPromise = new Promise<void>((resolve) => {
    socket.on("close", () => {
      closed = true;
      resolve();
    });
  });
  socket.on("data", (d: Buffer) => chunks.push(d));
  // A reset is a way of closing; the test reads `closed`.
  socket.on("error", () => undefined);
  await new Promise<void>((resolve) => {
    socket.once("connect", resolve);
    socket.once("close", resolve);
  });
  return {
    socket,
    received: () => Buffer.concat(chunks).toString("latin1"),
    closed: closedPromise,
    isClosed: () => closed,
    write: (data) => {
      if (!socket.destroyed) socket.write(data);
    },
    close: () => socket.destroy(),
  };
}

/** True if `client` is closed within `ms`. */
export async function closedWithin(client: RawClient, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const result = await Promise.race([client.closed.then(() => true as const), timeout]);
  clearTimeout(timer);
  return result;
}

/** Sends `bytes` one at a time every `intervalMs` until the connection closes or `maxMs` pass. */
export async function dribble(
  client: RawClient,
  bytes: string,
  intervalMs: number,
  maxMs: number,
): Promise<void> {
  const deadline = Date.now() + maxMs;
  for (let i = 0; !client.isClosed() && Date.now() < deadline; i = (i + 1) % bytes.length) {
    client.write(bytes[i]!);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Status codes of every HTTP response in `text` (a raw stream of responses). */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

/** The JSON body of the first response in `text`, if it has one. */
export function firstBody(text: string): unknown {
  const start = text.indexOf("\r\n\r\n");
  if (start < 0) return undefined;
  const rest = text.slice(start + 4);
  const end = rest.indexOf("HTTP/1.1 ");
  try {
    return JSON.parse(end >= 0 ? rest.slice(0, end) : rest);
  } catch {
    return undefined;
  }
}
