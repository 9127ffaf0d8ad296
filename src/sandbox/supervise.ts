/**
 * Runs warden-exec (and through it bubblewrap, warden-init and the program)
 * and watches it: feeds stdin, caps output, enforces the wall and CPU
 * limits, and gathers every report the helpers make.
 */
import { performance } from "node:perf_hooks";
import type { Readable, Writable } from "node:stream";
import { createInterface } from "node:readline";
import type { Cgroup } from "./cgroups/index.js";
import { startHelper } from "./launcher.js";
import { CappedOutput } from "./output.js";
import { parentPid } from "./owner.js";
import type { OutputChunk } from "./types.js";

export interface SuperviseOptions {
  helperPath: string;
  helperArgs: string[];
  seccompFd: number;
  cgroup: Cgroup;
  /** Called between mount and go when the helper mounts the workspace. */
  fillWorkspace?: () => Promise<void>;
  /** Written then closed; a stream is piped (a long-lived program's request channel). */
  stdin?: string | Buffer | Readable | undefined;
  /** Keep stdout/stderr text in the result (off: only streamed to onOutput). @default true */
  retainOutput?: boolean | undefined;
  outputBytes: number;
  onOutput?: ((chunk: OutputChunk) => void) | undefined;
  timeoutMs: number;
  killGraceMs: number;
  cpuTimeMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** What happened, before classification into a status. */
export interface Outcome {
  /** The program's own end as warden-init saw it; null if it never got that far. */
  program: { exitCode: number } | { signal: number } | null;
  /** Helper's wait status of bubblewrap, when reported. */
  bwrapStatus: number | null;
  /** The helper kept the workspace mounted (--keep-if matched). */
  workspaceKept: boolean;
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
}

const CPU_POLL_MS = 50;

export async function supervise(o: SuperviseOptions, seccompHandle: number): Promise<Outcome> {
  const outcome: Outcome = {
    program: null,
    bwrapStatus: null,
    workspaceKept: false,
    errors: [],
    timedOut: false,
    cpuExceeded: false,
    outputExceeded: false,
    killedByUser: false,
    forceKilled: false,
    stdout: new CappedOutput("stdout", o.outputBytes, o.onOutput, o.retainOutput ?? true),
    stderr: new CappedOutput("stderr", o.outputBytes, o.onOutput, o.retainOutput ?? true),
    wallTimeMs: 0,
    disk: null,
  };
  const child = startHelper(o.helperPath, o.helperArgs, {
    stdio: ["pipe", "pipe", "pipe", "pipe", "pipe", seccompHandle],
    env: {},
  });
  const [stdin, stdout, stderr, control, status] = child.stdio as [
    Writable,
    Readable,
    Readable,
    Readable & Writable,
    Readable,
  ];
  const timers: NodeJS.Timeout[] = [];
  const closed = new Promise<void>((resolve) => {
    child.on("error", (error) => {
      outcome.errors.push(`spawn: ${error.message}`);
      resolve();
    });
    child.on("close", () => resolve());
  });
  let startedAt = performance.now();
  let ended = false;
  let stopping: Promise<void> | undefined;

  const killAll = (): Promise<void> => {
    outcome.forceKilled = true;
    return o.cgroup.killAll().catch((error: unknown) => {
      outcome.errors.push(`kill: ${(error as Error).message}`);
    });
  };

  /** SIGTERM to the program's tree (not to bubblewrap, which would drop it at once), SIGKILL later. */
  const terminate = (graceMs: number): void => {
    if (ended || stopping) return;
    stopping = (async () => {
      if (graceMs > 0) {
        const pids = await o.cgroup.pids();
        const bwrap = new Set(pids.filter((p) => parentPid(p) === child.pid));
        await o.cgroup.signal("SIGTERM", bwrap);
        const grace = new Promise<void>((resolve) => timers.push(setTimeout(resolve, graceMs)));
        await Promise.race([grace, closed]);
        if (ended) return;
      }
      // Keep killing until the helper is gone: a process that joins the cgroup
      // just after a round (the start-up window) must not survive the stop.
      while (!ended) {
        await killAll();
        await Promise.race([new Promise((resolve) => setTimeout(resolve, 50)), closed]);
      }
    })();
  };

  const onAbort = (): void => {
    outcome.killedByUser = true;
    terminate(0);
  };

  const begin = (): void => {
    startedAt = performance.now();
    timers.push(
      setTimeout(() => {
        outcome.timedOut = true;
        terminate(o.killGraceMs);
      }, o.timeoutMs),
    );
    if (o.cpuTimeMs !== undefined) {
      const limit = o.cpuTimeMs;
      const poll = setInterval(() => {
        o.cgroup.accounting().then(
          (a) => {
            if (a.cpuTimeMs > limit && !outcome.cpuExceeded) {
              outcome.cpuExceeded = true;
              terminate(0);
            }
          },
          () => undefined, // the cgroup is going away with the run
        );
      }, CPU_POLL_MS);
      timers.push(poll);
    }
    if (o.signal) {
      if (o.signal.aborted) onAbort();
      else o.signal.addEventListener("abort", onAbort, { once: true });
    }
    stdin.on("error", () => undefined); // the program may exit without reading
    if (o.stdin && typeof o.stdin === "object" && "pipe" in o.stdin) o.stdin.pipe(stdin);
    else stdin.end(o.stdin ?? "");
  };

  const onData = (out: CappedOutput) => (data: Buffer) => {
    if (!out.push(data) && !outcome.outputExceeded) {
      outcome.outputExceeded = true;
      terminate(0);
    }
  };
  stdout.on("data", onData(outcome.stdout));
  stderr.on("data", onData(outcome.stderr));

  createInterface({ input: status }).on("line", (line) => {
    const [kind, a, b] = line.split(" ");
    if (kind === "exit") outcome.program = { exitCode: Number(a) };
    else if (kind === "signal") outcome.program = { signal: Number(a) };
    else outcome.errors.push(`init: ${[kind, a, b].filter(Boolean).join(" ")}`);
    outcome.wallTimeMs = performance.now() - startedAt;
  });

  const fill = o.fillWorkspace;
  createInterface({ input: control }).on("line", (line) => {
    const [kind, ...rest] = line.split(" ");
    if (kind === "R" && fill) {
      fill().then(
        () => {
          // Stopped before it started: never release the program; the helper unmounts and exits.
          if (outcome.killedByUser || outcome.timedOut) {
            control.end();
            return;
          }
          control.write("G");
          begin();
        },
        (error: unknown) => {
          outcome.errors.push(`workspace: ${(error as Error).message}`);
          control.end();
        },
      );
    } else if (kind === "U") {
      outcome.disk = {
        usedBytes: Number(rest[0]),
        freeBytes: Number(rest[1]),
        freeInodes: Number(rest[2]),
      };
    } else if (kind === "K") {
      outcome.workspaceKept = true;
    } else if (kind === "S") {
      outcome.bwrapStatus = Number(rest[0]);
    } else if (kind === "E") {
      outcome.errors.push(`exec: ${rest.join(" ")}`);
    }
  });
  if (!fill) begin();

  await closed;
  ended = true;
  o.signal?.removeEventListener("abort", onAbort);
  if (!outcome.wallTimeMs) outcome.wallTimeMs = performance.now() - startedAt;
  for (const t of timers) clearTimeout(t);
  await stopping;
  return outcome;
}
