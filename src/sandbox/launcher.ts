/**
 * Client of native/warden-launch: a small root process, started once, that
 * forks warden-exec for Warden, so that the big Node process never forks per
 * run (a fork blocks the event loop for time that grows with Warden's RSS).
 *
 * The child's five stdio fds are Unix stream sockets, as with Node's spawn:
 * the launcher connects each to a socket Warden listens on (in a root-only
 * directory) and names it with an 8-byte hello (slot and request id), so
 * Warden holds ordinary net.Sockets (backpressure, half-close) without any
 * fd passing. See docs/launcher.md.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Logger } from "../audit/logger.js";
import { fromChildProcess, HelperProcess, SLOTS } from "./helper-process.js";
import { isOwnerAlive, ownerTag, parseOwnerTag } from "./owner.js";

export interface LauncherOptions {
  launcherPath: string;
  helperPath: string;
  seccompPath: string;
  /** Root-only directory for the listening socket. */
  socketDir: string;
  logger: Logger;
  /**
   * Two cgroups the launcher moves a sleeping child between while Warden is
   * busy, so sandboxes never wait for an RCU grace period to join their own
   * (see native/warden-launch.c). Made when the launcher starts; released
   * (and with them the child) when it closes.
   */
  keepWarm?: () => Promise<{ procsFiles: [string, string]; release(): Promise<void> }>;
}

/** Same bounds as native/warden-launch.c: requests above them would end the launcher. */
export const MAX_REQUEST_BYTES = 1 << 20;
const MAX_ARGS = 8192;
const HELLO_BYTES = 8;
const HELLO_TIMEOUT_MS = 10_000;
/** The launcher's lines are short; a longer one means it is broken. */
const MAX_LINE = 512;

let sequence = 0;

export class Launcher {
  private keepWarm: { procsFiles: [string, string]; release(): Promise<void> } | undefined;
  private proc: ChildProcess | undefined;
  private server: Server | undefined;
  private socketPath = "";
  private ready: Promise<boolean> | undefined;
  private nextId = 1;
  private readonly inflight = new Map<number, HelperProcess>();
  /** Set when the launcher could not start: every run uses Node's spawn. */
  private fallback = false;
  /** The running launcher said READY (a launcher that never did fails no run). */
  private up = false;
  private closed = false;

  constructor(private readonly o: LauncherOptions) {}

  /** Starts warden-exec with `args` (argv[0] is the helper itself). */
  start(args: readonly string[]): HelperProcess {
    const argv = [this.o.helperPath, ...args];
    const bytes = argv.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
    if (this.fallback || this.closed || bytes > MAX_REQUEST_BYTES || argv.length > MAX_ARGS)
      return this.spawnDirect(args);
    const helper = new HelperProcess();
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffff_ffff ? 1 : this.nextId + 1;
    this.inflight.set(id, helper);
    helper.once("close", () => this.forget(id));
    helper.once("error", () => this.forget(id));
    this.ref(true);
    const payload = Buffer.from(argv.join("\0") + "\0");
    const header = Buffer.alloc(8);
    header.writeUInt32LE(payload.length, 0);
    header.writeUInt32LE(id, 4);
    const send = (): void => void this.proc?.stdin?.write(Buffer.concat([header, payload]));
    (this.ready ??= this.boot()).then(
      (ok) => {
        if (ok && this.proc) return send();
        // The launcher never came up: this run, and every later one, goes through spawn.
        this.forget(id);
        this.spawnDirect(args, helper);
      },
      (error: unknown) => helper.fail(error as Error),
    );
    return helper;
  }

  /** The keep-warm cgroups, once per launcher; none (logged) if they cannot be made. */
  private async startKeepWarm(): Promise<string[]> {
    if (!this.o.keepWarm) return [];
    try {
      this.keepWarm ??= await this.o.keepWarm();
      return this.keepWarm.procsFiles;
    } catch (error) {
      this.o.logger.warn({ err: (error as Error).message }, "cgroup keep-warm unavailable");
      return [];
    }
  }

  /** Ends the launcher (it SIGTERMs any child still running) and removes the socket. */
  async close(): Promise<void> {
    this.closed = true;
    const keepWarm = this.keepWarm;
    this.keepWarm = undefined;
    const proc = this.proc;
    const gone =
      proc && proc.exitCode === null && proc.signalCode === null
        ? new Promise((resolve) => proc.once("exit", resolve))
        : Promise.resolve();
    // Held open until the launcher is gone, or Node could exit before its cgroups go.
    if (keepWarm) this.ref(true);
    this.proc?.stdin?.end();
    this.server?.close();
    if (this.socketPath) rmSync(this.socketPath, { force: true });
    // The launcher's end kills the sleeping child; its cgroups go after it.
    if (keepWarm) {
      await gone;
      await keepWarm.release().catch(() => undefined);
    }
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  private spawnDirect(args: readonly string[], helper?: HelperProcess): HelperProcess {
    return spawnHelper(this.o.helperPath, args, this.o.seccompPath, helper);
  }

  private forget(id: number): void {
    this.inflight.delete(id);
    if (this.inflight.size === 0) this.ref(false);
  }

  /** Holds Node's event loop open only while runs wait on the launcher. */
  private ref(on: boolean): void {
    const handles = [this.proc, this.server, this.proc?.stdout, this.proc?.stdin] as const;
    for (const h of handles) {
      const r = h as { ref?: () => void; unref?: () => void } | undefined | null;
      if (on) r?.ref?.();
      else r?.unref?.();
    }
  }

  /** Listens, starts the launcher and waits for READY; false (logged) if it cannot start. */
  private async boot(): Promise<boolean> {
    try {
      this.socketPath = await this.listen();
      const keepWarm = await this.startKeepWarm();
      const proc = spawn(
        this.o.launcherPath,
        [
          "--helper",
          this.o.helperPath,
          "--seccomp",
          this.o.seccompPath,
          "--socket",
          this.socketPath,
          ...keepWarm.flatMap((procs) => ["--keep-warm", procs]),
        ],
        { stdio: ["pipe", "pipe", "inherit"], env: {} },
      );
      this.proc = proc;
      this.ref(this.inflight.size > 0);
      const up = new Promise<boolean>((resolve) => {
        proc.on("error", (error) => {
          this.o.logger.warn({ err: error.message }, "sandbox launcher failed");
          resolve(false);
        });
        proc.on("exit", (code, signal) => {
          resolve(false);
          this.lost(proc, code, signal);
        });
        this.readLines(proc, () => {
          this.up = true;
          resolve(true);
        });
      });
      const ok = await up;
      if (!ok && !this.fallback) {
        this.fallback = true;
        this.o.logger.warn("sandbox launcher did not start; runs fork Warden itself (slower)");
      }
      return ok;
    } catch (error) {
      this.fallback = true;
      this.o.logger.warn(
        { err: (error as Error).message },
        "sandbox launcher unavailable; runs fork Warden itself (slower)",
      );
      return false;
    }
  }

  /** The launcher's replies: strict, bounded lines about known requests only. */
  private readLines(proc: ChildProcess, onReady: () => void): void {
    if (!proc.stdout) return;
    const lines = createInterface({ input: proc.stdout });
    let length = 0;
    proc.stdout.on("data", (d: Buffer) => {
      length = d.lastIndexOf(10) >= 0 ? d.length - d.lastIndexOf(10) - 1 : length + d.length;
      if (length > MAX_LINE) proc.kill("SIGKILL");
    });
    lines.on("line", (line) => {
      const m = /^([PFX]) (\d{1,10}) (.*)$/.exec(line);
      if (line === "READY") return onReady();
      const helper = m ? this.inflight.get(Number(m[2])) : undefined;
      if (m?.[1] === "P" && helper && /^\d+$/.test(m[3] ?? "")) helper.spawned(Number(m[3]));
      else if (m?.[1] === "X" && helper && /^-?\d+$/.test(m[3] ?? ""))
        helper.exitedWith(Number(m[3]));
      else if (m?.[1] === "F" && helper) helper.fail(new Error(`launcher: ${m[3]}`));
      else this.o.logger.warn({ line: line.slice(0, 200) }, "sandbox launcher said");
    });
  }

  /** The launcher is gone: its runs fail now (no hang); the next run starts a new one. */
  private lost(proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.proc !== proc) return;
    const wasUp = this.up;
    this.proc = undefined;
    this.ready = undefined;
    this.up = false;
    this.server?.close();
    this.server = undefined;
    rmSync(this.socketPath, { force: true });
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (!wasUp) return; // its runs go through spawn instead (see start)
    if (!this.closed && this.inflight.size > 0)
      this.o.logger.warn({ runs: this.inflight.size, how }, "sandbox launcher died; restarting");
    for (const helper of [...this.inflight.values()])
      helper.fail(new Error(`sandbox launcher exited (${how}) during the run`));
    this.inflight.clear();
  }

  private async listen(): Promise<string> {
    mkdirSync(this.o.socketDir, { recursive: true, mode: 0o700 });
    // Sockets of Warden processes that died without cleaning up.
    for (const name of readdirSync(this.o.socketDir)) {
      const owner = parseOwnerTag(name.split("-").slice(0, 2).join("-"));
      if (owner && !isOwnerAlive(owner)) rmSync(join(this.o.socketDir, name), { force: true });
    }
    const path = join(this.o.socketDir, `${ownerTag()}-${++sequence}.sock`);
    rmSync(path, { force: true });
    const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
    server.on("error", (error) => this.o.logger.warn({ err: error.message }, "launcher socket"));
    this.server = server;
    return path;
  }

  /** One of a child's fds: read its hello (exactly 8 bytes, in time) and hand it over. */
  private accept(socket: Socket): void {
    let hello = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
    socket.on("error", () => undefined); // the helper's end may go first; its relay reports
    const onData = (data: Buffer): void => {
      hello = Buffer.concat([hello, data]);
      if (hello.length < HELLO_BYTES) return;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      const slot = hello[2] ?? SLOTS;
      const id = hello.readUInt32LE(4);
      const helper = this.inflight.get(id);
      if (hello.toString("latin1", 0, 2) !== "WL" || hello[3] !== 0 || !helper?.wants(slot)) {
        socket.destroy();
        return;
      }
      if (hello.length > HELLO_BYTES) socket.unshift(hello.subarray(HELLO_BYTES));
      // Output-only slots: Warden never writes to them, so its half closes at once
      // and the socket is freed when the child's half ends.
      if (slot === 1 || slot === 2 || slot === 4) socket.end();
      else if (slot === 3) socket.on("end", () => socket.end());
      helper.attach(slot, socket);
    };
    socket.on("data", onData);
  }
}

/** One launcher per helper path, shared by the sandbox hosts of this process. */
const launchers = new Map<string, { launcher: Launcher; users: number }>();

export function registerLauncher(o: LauncherOptions): () => Promise<void> {
  const entry = launchers.get(o.helperPath) ?? { launcher: new Launcher(o), users: 0 };
  entry.users++;
  launchers.set(o.helperPath, entry);
  return async () => {
    if (--entry.users > 0 || launchers.get(o.helperPath) !== entry) return;
    launchers.delete(o.helperPath);
    await entry.launcher.close();
  };
}

/**
 * Starts warden-exec with its six streams and the seccomp filter as fd 5,
 * empty environment. Through the launcher when one is registered for this
 * helper (it opens the filter itself); else with Node's spawn.
 */
export function startHelper(
  helperPath: string,
  args: string[],
  seccompPath: string,
): HelperProcess {
  const entry = launchers.get(helperPath);
  if (entry) return entry.launcher.start(args);
  return spawnHelper(helperPath, args, seccompPath);
}

/** Node's spawn (a fork of Warden): the fallback when no launcher serves. */
function spawnHelper(
  helperPath: string,
  args: readonly string[],
  seccompPath: string,
  helper?: HelperProcess,
): HelperProcess {
  const seccomp = openSync(seccompPath, "r");
  try {
    const child = spawn(helperPath, [...args], {
      stdio: ["pipe", "pipe", "pipe", "pipe", "pipe", seccomp, "pipe"],
      env: {},
    });
    return fromChildProcess(child, helper);
  } finally {
    closeSync(seccomp); // the child has its own copy
  }
}
