/**
 * Runs warden-exec (and through it bubblewrap, warden-init and the program)
 * and watches it. A launch brings the sandbox up to the point where its init
 * waits for the run request; `begin` then fills the workspace, sends the
 * request, feeds stdin, caps output, enforces the wall and CPU limits and
 * gathers every report the helpers make. A cold run begins at once; the warm
 * pool launches ahead and begins when a request takes the box.
 */
import { performance } from "node:perf_hooks";
import type { Readable, Writable } from "node:stream";
import { createInterface } from "node:readline";
import type { Cgroup } from "./cgroups/index.js";
import { fdChannel, type ControlChannel } from "./control-channel.js";
import { startHelper } from "./launcher.js";
import { CappedOutput } from "./output.js";
import { UsageSampler, type SampledUsage } from "./usage-sampler.js";
import { parentPid } from "./owner.js";
import type { OutputChunk } from "./types.js";

export interface LaunchOptions {
  helperPath: string;
  helperArgs: string[];
  /** The seccomp filter, handed to the helper as fd 5. */
  seccompPath: string;
  cgroup: Cgroup;
  /** The helper mounts a fresh workspace (and reports "R" once it has). */
  mountsWorkspace: boolean;
  /**
   * How init reports and gets its request (the gVisor tier's socket); by
   * default the helper's status and request fds.
   */
  control?: ControlChannel | undefined;
  /**
   * Asks the program to stop (SIGTERM) at the deadline, before the grace; by
   * default a signal to bubblewrap's children through the cgroup.
   */
  softStop?: (() => Promise<void>) | undefined;
  /** What the helper runs, for a failed start's message. @default "bubblewrap" */
  runtimeName?: string | undefined;
  /** Told when the helper reports the runtime's end ("S"): nothing can connect after it. */
  onRuntimeExit?: (() => void) | undefined;
}

export interface BeginOptions {
  /** The run request for warden-init (see init-request.ts). */
  request: Buffer;
  /** Called with the helper's pid once the workspace is mounted, before the request goes. */
  fillWorkspace?: ((helperPid: number) => Promise<void>) | undefined;
  /** Written then closed; a stream is piped (a long-lived program's request channel). */
  stdin?: string | Buffer | Readable | undefined;
  /** Keep stdout/stderr text in the result (off: only streamed to onOutput). @default true */
  retainOutput?: boolean | undefined;
  outputBytes: number;
  onOutput?: ((chunk: OutputChunk) => void) | undefined;
  timeoutMs: number;
  killGraceMs: number;
  cpuTimeMs?: number | undefined;
  /** CPU the cgroup had used before the run began (a warm box's start-up). */
  cpuBaselineMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** The workspace as the host reaches it (for the disk peak), when it does. */
  workspace?: (() => string | null) | undefined;
}

/** What happened, before classification into a status. */
export interface Outcome {
  /** The program's own end as warden-init saw it; null if it never got that far. */
  program: { exitCode: number } | { signal: number } | null;
  /** Helper's wait status of bubblewrap (or runsc), when reported. */
  bwrapStatus: number | null;
  /** gVisor: the runtime died without init's report after the box hit pids.max. */
  pidsExceeded?: boolean;
  /** Warden-side failures (helper "E" lines, init errors, spawn errors). */
  errors: string[];
  timedOut: boolean;
  cpuExceeded: boolean;
  outputExceeded: boolean;
  killedByUser: boolean;
  /** We SIGKILLed the tree (after grace, on output flood, or on abort). */
  forceKilled: boolean;
  stdout: CappedOutput;
  stderr: CappedOutput;
  wallTimeMs: number;
  disk: { usedBytes: number; freeBytes: number; freeInodes: number } | null;
  /** Memory and disk sampled while the program ran (null: it never began). */
  usage: SampledUsage | null;
}

const CPU_POLL_MS = 50;
/** What a launched box may print before its run begins (an interpreter's warning, say). */
const EARLY_OUTPUT_BYTES = 64 * 1024;

/** A helper that has been started; its program runs once `begin` is called. */
export class Launched {
  /** Resolves once the workspace is mounted (if any) and init waits for its request. */
  readonly ready: Promise<void>;
  /** The helper reported "H": it holds the box's mount namespace until `release`. */
  holding = false;
  /** Resolves when the helper process has gone. */
  readonly exited: Promise<void>;
  private readonly outcome: Outcome;
  private readonly early: { stream: "stdout" | "stderr"; data: Buffer }[] = [];
  private earlyBytes = 0;
  private begun = false;
  private ended = false;
  private readonly runEnded: Promise<void>;
  private stopping: Promise<void> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private startedAt = performance.now();
  /** stdin, stdout, stderr, control, status, (the seccomp fd), request. */
  private readonly stdio: [
    Writable,
    Readable,
    Readable,
    Readable & Writable,
    Readable,
    null,
    Writable,
  ];
  private readonly child: ReturnType<typeof startHelper>;
  private readonly channel: ControlChannel;

  constructor(private readonly o: LaunchOptions) {
    this.outcome = {
      program: null,
      bwrapStatus: null,
      errors: [],
      timedOut: false,
      cpuExceeded: false,
      outputExceeded: false,
      killedByUser: false,
      forceKilled: false,
      stdout: new CappedOutput("stdout", 0),
      stderr: new CappedOutput("stderr", 0),
      wallTimeMs: 0,
      disk: null,
      usage: null,
    };
    const child = startHelper(o.helperPath, o.helperArgs, o.seccompPath);
    this.child = child;
    this.stdio = child.stdio;
    const [, stdout, stderr, control, status, , request] = this.stdio;
    this.channel = o.control ?? fdChannel(status, request);
    if (o.control) request.on("error", () => undefined);
    let mounted = !o.mountsWorkspace;
    let initReady = false;
    let spawned = false;
    let settleReady: (error?: Error) => void = () => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      settleReady = (error) => (error ? reject(error) : resolve());
    });
    this.ready.catch(() => undefined);
    const checkReady = (): void => {
      if (mounted && initReady && spawned) settleReady();
    };
    child.on("spawn", () => {
      spawned = true;
      checkReady();
    });
    this.exited = new Promise<void>((resolve) => {
      child.on("error", (error) => {
        this.outcome.errors.push(`spawn: ${error.message}`);
        resolve();
      });
      child.on("close", () => resolve());
    });
    void this.exited.then(() =>
      settleReady(new Error(this.outcome.errors.join("; ") || "sandbox ended before it was ready")),
    );
    const streamsEnded = Promise.all([
      ...[stdout, stderr].map(
        (s) =>
          new Promise<void>((resolve) => {
            s.once("end", () => resolve());
            s.once("close", () => resolve());
          }),
      ),
      this.channel.ended,
    ]);
    let reported: () => void = () => undefined;
    const statusReported = new Promise<void>((resolve) => (reported = resolve));
    // The run is over when the helper says so and the sandbox's output has ended,
    // or when the helper is gone, whichever comes first.
    this.runEnded = Promise.race([
      Promise.all([statusReported, streamsEnded]).then(() => undefined),
      this.exited,
    ]);

    const onData = (stream: "stdout" | "stderr") => (data: Buffer) => {
      if (this.begun) {
        this.push(stream, data);
        return;
      }
      this.earlyBytes += data.length;
      if (this.earlyBytes > EARLY_OUTPUT_BYTES) {
        this.outcome.errors.push("the sandbox printed too much before its run began");
        void this.kill();
      } else this.early.push({ stream, data });
    };
    stdout.on("data", onData("stdout"));
    stderr.on("data", onData("stderr"));

    this.channel.lines((line) => {
      const [kind, a, b] = line.split(" ");
      if (kind === "ready") {
        initReady = true;
        checkReady();
        return;
      }
      if (kind === "exit") this.outcome.program = { exitCode: Number(a) };
      else if (kind === "signal") this.outcome.program = { signal: Number(a) };
      else this.outcome.errors.push(`init: ${[kind, a, b].filter(Boolean).join(" ")}`);
      this.outcome.wallTimeMs = performance.now() - this.startedAt;
    });

    createInterface({ input: control }).on("line", (line) => {
      const [kind, ...rest] = line.split(" ");
      if (kind === "R") {
        mounted = true;
        checkReady();
      } else if (kind === "U") {
        this.outcome.disk = {
          usedBytes: Number(rest[0]),
          freeBytes: Number(rest[1]),
          freeInodes: Number(rest[2]),
        };
      } else if (kind === "H") {
        this.holding = true;
      } else if (kind === "S") {
        this.outcome.bwrapStatus = Number(rest[0]);
        this.o.onRuntimeExit?.();
        reported();
        // bubblewrap ended before init said ready (a bind it could not make, say):
        // the helper now holds the box, so without this the start would wait forever.
        if (!initReady) settleReady(new Error(this.failedStart(Number(rest[0]))));
      } else if (kind === "E") {
        this.outcome.errors.push(`exec: ${rest.join(" ")}`);
      }
    });
    control.on("error", () => undefined);
  }

  /** Why a start failed: bubblewrap's status and the first line it wrote, printable and short. */
  private failedStart(status: number): string {
    const said = Buffer.concat(this.early.filter((e) => e.stream === "stderr").map((e) => e.data))
      .subarray(0, 4096)
      .toString("utf8")
      .split("\n")[0]!
      .replace(/[^\x20-\x7e]/g, "?")
      .slice(0, 300);
    const what = this.o.runtimeName ?? "bubblewrap";
    return `the sandbox did not start (${what} status ${status})${said ? `: ${said}` : ""}`;
  }

  private push(stream: "stdout" | "stderr", data: Buffer): void {
    const out = stream === "stdout" ? this.outcome.stdout : this.outcome.stderr;
    if (!out.push(data) && !this.outcome.outputExceeded) {
      this.outcome.outputExceeded = true;
      this.terminate(0);
    }
  }

  /** The helper's pid, once it has started. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Kills the sandbox, racing forks, until the run has ended. */
  private killAll(): Promise<void> {
    this.outcome.forceKilled = true;
    return this.o.cgroup.killAll().catch((error: unknown) => {
      this.outcome.errors.push(`kill: ${(error as Error).message}`);
    });
  }

  /** SIGTERM to the program's tree (not to bubblewrap, which would drop it at once), SIGKILL later. */
  private terminate(graceMs: number): void {
    if (this.ended || this.stopping) return;
    this.stopping = (async () => {
      if (graceMs > 0) {
        if (this.o.softStop)
          await this.o.softStop().catch((error: unknown) => {
            this.outcome.errors.push(`stop: ${(error as Error).message}`);
          });
        else {
          const pids = await this.o.cgroup.pids();
          const bwrap = new Set(pids.filter((p) => parentPid(p) === this.pid));
          await this.o.cgroup.signal("SIGTERM", bwrap);
        }
        const grace = new Promise<void>((resolve) =>
          this.timers.push(setTimeout(resolve, graceMs)),
        );
        await Promise.race([grace, this.runEnded]);
        if (this.ended) return;
      }
      // Keep killing until the run is over: a process that joins the cgroup
      // just after a round (the start-up window) must not survive the stop.
      while (!this.ended) {
        await this.killAll();
        await Promise.race([new Promise((resolve) => setTimeout(resolve, 50)), this.runEnded]);
      }
    })();
  }

  /** Ends a box that never began (pool drain, a failed start): kills it and lets the helper go. */
  async kill(): Promise<void> {
    if (!this.begun) {
      this.begun = true;
      this.channel.drop();
      this.stdio[6].destroy();
      this.stdio[0].destroy();
    }
    this.terminate(0);
    await this.runEnded;
    this.ended = true;
    await this.stopping;
    this.release();
  }

  /** Lets a holding helper go: it exits and the box's mount namespace with it. */
  release(): void {
    this.stdio[3].end();
  }

  /** Runs the program: the request goes to init and the limits start to count. */
  async begin(b: BeginOptions): Promise<Outcome> {
    if (this.begun) throw new Error("a launched sandbox runs once");
    this.begun = true;
    const retain = b.retainOutput ?? true;
    this.outcome.stdout = new CappedOutput("stdout", b.outputBytes, b.onOutput, retain);
    this.outcome.stderr = new CappedOutput("stderr", b.outputBytes, b.onOutput, retain);
    for (const { stream, data } of this.early.splice(0)) this.push(stream, data);
    const [stdin] = this.stdio;
    const onAbort = (): void => {
      this.outcome.killedByUser = true;
      this.terminate(0);
    };
    let sampler: UsageSampler | undefined;
    const started = await this.ready.then(
      () => true,
      (error: unknown) => {
        this.outcome.errors.push((error as Error).message);
        return false;
      },
    );
    if (started && b.fillWorkspace && this.pid !== undefined) {
      try {
        await b.fillWorkspace(this.pid);
      } catch (error) {
        this.outcome.errors.push(`workspace: ${(error as Error).message}`);
      }
    }
    if (!started || this.outcome.errors.length > 0 || b.signal?.aborted) {
      // Never released: init gets no request and the sandbox is killed.
      if (b.signal?.aborted) this.outcome.killedByUser = true;
      this.channel.drop();
      stdin.destroy();
      this.terminate(0);
    } else {
      this.channel.send(b.request);
      this.startedAt = performance.now();
      sampler = new UsageSampler(this.o.cgroup, b.workspace);
      sampler.start();
      this.timers.push(
        setTimeout(() => {
          this.outcome.timedOut = true;
          this.terminate(b.killGraceMs);
        }, b.timeoutMs),
      );
      if (b.cpuTimeMs !== undefined) {
        const limit = b.cpuTimeMs + (b.cpuBaselineMs ?? 0);
        this.timers.push(
          setInterval(() => {
            this.o.cgroup.accounting().then(
              (a) => {
                if (a.cpuTimeMs > limit && !this.outcome.cpuExceeded) {
                  this.outcome.cpuExceeded = true;
                  this.terminate(0);
                }
              },
              () => undefined, // the cgroup is going away with the run
            );
          }, CPU_POLL_MS),
        );
      }
      b.signal?.addEventListener("abort", onAbort, { once: true });
      stdin.on("error", () => undefined); // the program may exit without reading
      if (b.stdin && typeof b.stdin === "object" && "pipe" in b.stdin) b.stdin.pipe(stdin);
      else stdin.end(b.stdin ?? "");
    }

    await this.runEnded;
    this.ended = true;
    b.signal?.removeEventListener("abort", onAbort);
    if (!this.outcome.wallTimeMs) this.outcome.wallTimeMs = performance.now() - this.startedAt;
    for (const t of this.timers) clearTimeout(t);
    await this.stopping;
    if (sampler)
      this.outcome.usage = await sampler.stop(
        this.outcome.wallTimeMs,
        this.outcome.disk?.usedBytes,
      );
    return this.outcome;
  }
}
