/**
 * The host end of init's control socket in the gVisor tier. runsc binds it
 * into the container at /.warden/ctl.sock (--host-uds=open lets the container
 * connect to a bound socket, never create one). init connects before any
 * program exists; that first connection is the only one ever accepted: the
 * listener closes and its path is unlinked at once, so a program that later
 * finds the path cannot connect and forge an `exit 0`.
 *
 * gVisor checks the socket's mode for the guest's uid 1000 itself, so the
 * socket is 0666, inside a root-only 0700 directory: no host user reaches it,
 * and runsc's gofer (root, binding it in) does.
 */
import { chmod, mkdir, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";

export class ControlListener {
  /** init's connection: resolves with the first one, rejects if the listener closes first. */
  readonly connection: Promise<Socket>;
  private settle: { resolve(s: Socket): void; reject(e: Error): void } | undefined;
  private closed = false;

  private constructor(
    /** The root-only directory holding the socket. */
    readonly dir: string,
    private readonly server: Server,
  ) {
    this.connection = new Promise<Socket>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.connection.catch(() => undefined);
    server.on("connection", (socket) => {
      socket.on("error", () => undefined); // init's end going away shows as its end
      const settle = this.settle;
      this.settle = undefined;
      if (!settle) {
        socket.destroy(); // a second one, in the instant before close
        return;
      }
      void this.close();
      settle.resolve(socket);
    });
    server.on("error", () => undefined);
  }

  /** The socket's host path (bound into the container). */
  get path(): string {
    return join(this.dir, "sock");
  }

  /** Listens on `<dir>/sock`, making `dir` (root-owned, 0700) afresh. */
  static async listen(dir: string): Promise<ControlListener> {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o700 });
    const path = join(dir, "sock");
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: false });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const listener = new ControlListener(dir, server);
    try {
      await chmod(path, 0o666);
    } catch (error) {
      await listener.close();
      throw error;
    }
    return listener;
  }

  /** Stops listening and removes the socket and its directory; a pending `connection` rejects. Safe twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    this.settle?.reject(new Error("init never connected to its control socket"));
    this.settle = undefined;
    await rm(this.dir, { recursive: true, force: true });
  }
}
