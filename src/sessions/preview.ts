/**
 * Web previews: reach a server listening inside a session without giving the
 * session any network and without using a host port. Warden listens on a Unix
 * socket bound into the sandbox; for each connection it asks the session's
 * agent to dial 127.0.0.1:PORT inside the sandbox and then this socket,
 * introducing itself with a one-time token. The host never connects to a path
 * the sandbox controls: the sandbox dials in, never the other way round.
 */
import { randomBytes } from "node:crypto";
import { chmod, chown, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { WardenError } from "../errors.js";

/** Where the relay socket appears inside the sandbox. */
export const PREVIEW_SOCKET = "/.warden/preview.sock";
const DIAL_TIMEOUT_MS = 10_000;
const TOKEN_BYTES = 16;
/** The token line is 32 hex digits and a newline; anything longer is not ours. */
const MAX_HELLO_BYTES = 64;
/**
 * The socket is reachable by anything in the sandbox, not only the agent: a
 * connection that does not present a token soon is dropped, and at most this
 * many may be waiting to, so the sandbox cannot pile up Warden's descriptors.
 */
const HELLO_TIMEOUT_MS = 2000;
const MAX_UNANNOUNCED = 32;

export class PreviewRelay {
  private server: Server | undefined;
  private readonly waiting = new Map<string, (socket: Socket) => void>();
  private readonly sockets = new Set<Socket>();
  private unannounced = 0;

  constructor(readonly path: string) {}

  /** Listens on the socket; only the box's uid may connect. */
  async listen(uid: number): Promise<void> {
    await rm(this.path, { force: true });
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.path, () => resolve());
    });
    await chown(this.path, uid, uid);
    await chmod(this.path, 0o600);
  }

  /**
   * A token for the agent to present, and the connection that presents it,
   * handed over paused (so no byte is lost before its reader is attached: pipe()
   * resumes it, other readers call resume()). Rejects if nothing dials in within 10 s.
   */
  expect(): { token: string; socket: Promise<Socket>; cancel: () => void } {
    const token = randomBytes(TOKEN_BYTES).toString("hex");
    let cancel!: () => void;
    const socket = new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(token);
        reject(new WardenError("UPSTREAM_TIMEOUT", "preview: the session did not connect in time"));
      }, DIAL_TIMEOUT_MS);
      this.waiting.set(token, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
      cancel = () => {
        clearTimeout(timer);
        this.waiting.delete(token);
      };
    });
    // Whoever awaits it may be gone by the time it settles: never an unhandled rejection.
    socket.catch(() => undefined);
    return { token, socket, cancel };
  }

  private accept(socket: Socket): void {
    if (this.unannounced >= MAX_UNANNOUNCED) return void socket.destroy();
    this.unannounced++;
    let announced = false;
    const announce = (): void => {
      if (announced) return;
      announced = true;
      this.unannounced--;
      clearTimeout(timer);
    };
    const timer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
    this.sockets.add(socket);
    socket.on("close", () => {
      announce();
      this.sockets.delete(socket);
    });
    socket.on("error", () => socket.destroy());
    let hello = Buffer.alloc(0);
    const onData = (data: Buffer): void => {
      hello = Buffer.concat([hello, data]);
      const newline = hello.indexOf(0x0a);
      if (newline < 0) {
        if (hello.length > MAX_HELLO_BYTES) socket.destroy();
        return;
      }
      announce();
      socket.off("data", onData);
      socket.pause();
      const token = hello.subarray(0, newline).toString("latin1");
      const deliver = this.waiting.get(token);
      if (!deliver) return void socket.destroy();
      this.waiting.delete(token);
      const rest = hello.subarray(newline + 1);
      if (rest.length > 0) socket.unshift(rest);
      deliver(socket);
    };
    socket.on("data", onData);
  }

  /** Closes the socket and every connection through it. Safe to call twice. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.path, { force: true });
  }
}
