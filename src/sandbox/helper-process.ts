/**
 * A ChildProcess look-alike for warden-exec, whatever started it: the
 * launcher (its sockets reach Warden a moment after the request) or Node's own
 * spawn (the fallback). Its five stdio streams exist from the start and are
 * relays: writes wait until the real stream is attached, reads flow from it
 * with backpressure, end-of-stream is passed on.
 */
import type { ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { constants } from "node:os";
import { Duplex } from "node:stream";

/**
 * stdin, stdout, stderr, control (both ways), status, and the run request for
 * the sandbox's init: warden-exec's fds 0..4 and 6 (fd 5 is the seccomp filter).
 */
export const SLOTS = 6;
/** warden-exec's fd for each slot. */
export const SLOT_FDS = [0, 1, 2, 3, 4, 6] as const;

class Relay extends Duplex {
  private source: Duplex | undefined;
  private waitingWrite: (() => void) | undefined;
  sourceClosed = false;

  constructor(private readonly slot: number) {
    super({ allowHalfOpen: true });
  }

  attach(source: Duplex): void {
    this.source = source;
    source.on("data", (data: Buffer) => {
      if (!this.push(data)) source.pause();
    });
    source.on("end", () => this.push(null));
    // Only stdin's errors are the consumer's to see (EPIPE: the program did not
    // read it all); on an output stream an error just ends the stream.
    source.on("error", (error) =>
      this.slot === 0 || this.slot === 5 ? this.destroy(error) : this.push(null),
    );
    source.on("close", () => {
      this.sourceClosed = true;
      this.emit("source-close");
    });
    source.resume(); // the launcher's sockets arrive paused (after their hello)
    this.waitingWrite?.();
  }

  override _read(): void {
    this.source?.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, done: (e?: Error | null) => void) {
    if (this.source) this.source.write(chunk, encoding, done);
    else this.waitingWrite = () => this._write(chunk, encoding, done);
  }

  override _final(done: (e?: Error | null) => void): void {
    if (this.source) this.source.end(() => done());
    else this.waitingWrite = () => this._final(done);
  }

  override _destroy(error: Error | null, done: (e?: Error | null) => void): void {
    this.source?.destroy();
    done(error);
  }
}

/**
 * Events as ChildProcess's: 'spawn', 'exit' (code, signal), 'error' (at most
 * once; nothing follows it), and 'close' once the exit is known and stdout,
 * stderr, control and status have all closed.
 */
export class HelperProcess extends EventEmitter {
  pid: number | undefined;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  /** As ChildProcess.stdio, by fd: index 5 (the seccomp filter) is not a stream. */
  readonly stdio: [Duplex, Duplex, Duplex, Duplex, Duplex, null, Duplex];
  private readonly relays: Relay[];
  private readonly attached = new Set<number>();
  private exited = false;
  private done = false;

  constructor() {
    super();
    this.relays = Array.from({ length: SLOTS }, (_, slot) => new Relay(slot));
    const [a, b, c, d, e, f] = this.relays as [Relay, Relay, Relay, Relay, Relay, Relay];
    this.stdio = [a, b, c, d, e, null, f];
    for (const relay of this.outputs()) relay.on("source-close", () => this.maybeClose());
  }

  /** Whether `slot` still waits for its stream (a second one for it is refused). */
  wants(slot: number): boolean {
    return !this.done && slot >= 0 && slot < SLOTS && !this.attached.has(slot);
  }

  attach(slot: number, source: Duplex): void {
    this.attached.add(slot);
    this.relays[slot]?.attach(source);
  }

  override on(event: "error", listener: (error: Error) => void): this;
  override on(
    event: "exit" | "close",
    listener: (code: number | null, signal: NodeJS.Signals | null) => void,
  ): this;
  override on(event: "spawn", listener: () => void): this;
  override on(event: string, listener: (...args: never[]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  spawned(pid: number): void {
    this.pid = pid;
    this.emit("spawn");
  }

  /** The helper's raw wait status, as waitpid(2) gives it. */
  exitedWith(status: number): void {
    const signal = status & 0x7f;
    this.setExit(
      signal === 0 ? (status >> 8) & 0xff : null,
      signal === 0 ? null : signalName(signal),
    );
  }

  setExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited || this.done) return;
    this.exited = true;
    this.exitCode = code;
    this.signalCode = signal;
    this.emit("exit", code, signal);
    this.maybeClose();
  }

  /** Ends the helper as failed: 'error', then its streams are torn down. */
  fail(error: Error): void {
    if (this.done) return;
    this.done = true;
    this.emit("error", error);
    for (const relay of this.relays) relay.destroy();
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): boolean {
    if (this.pid === undefined || this.exited) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** stdout, stderr, control and status: what must close before 'close'. */
  private outputs(): Relay[] {
    return this.relays.slice(1, 5);
  }

  private maybeClose(): void {
    if (this.done || !this.exited || !this.outputs().every((r) => r.sourceClosed)) return;
    this.done = true;
    // Nothing can be written to a helper that is gone: its stdin and request
    // sockets would otherwise stay open in Warden until someone ends them.
    for (const slot of [0, 5]) this.relays[slot]?.destroy();
    this.emit("close", this.exitCode, this.signalCode);
  }
}

function signalName(signal: number): NodeJS.Signals | null {
  const found = Object.entries(constants.signals).find(([, value]) => value === signal);
  return found ? (found[0] as NodeJS.Signals) : null;
}

/** Wraps a child started by Node's spawn (the fallback) in the same shape. */
export function fromChildProcess(child: ChildProcess, helper = new HelperProcess()): HelperProcess {
  SLOT_FDS.forEach((fd, slot) => {
    const stream = (child.stdio as unknown as (Duplex | null)[])[fd];
    if (stream) helper.attach(slot, stream);
  });
  child.on("spawn", () => helper.spawned(child.pid ?? 0));
  child.on("exit", (code, signal) => helper.setExit(code, signal));
  child.on("error", (error) => helper.fail(error));
  return helper;
}
