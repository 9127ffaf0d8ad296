/**
 * runsc's command lines other than `run` (which warden-exec starts): the stop
 * at the deadline, the teardown, the probe. Every call repeats the same global
 * flags (runscGlobalArgs), or runsc would look in another state root or refuse.
 */
import { execFile } from "node:child_process";

export interface RunscCall {
  runscPath: string;
  /** runscGlobalArgs(): --root, --network=none, --host-uds=open, --platform... */
  globalArgs: readonly string[];
}

export interface RunscOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** At most this much of runsc's output is kept (its errors are one line). */
const MAX_OUTPUT = 64 * 1024;

/**
 * Runs runsc with an empty environment and a fixed argv (nothing from a
 * request is ever a flag); killed at `timeoutMs`.
 */
export function runsc(
  call: RunscCall,
  args: readonly string[],
  timeoutMs = 10_000,
): Promise<RunscOutcome> {
  return new Promise((resolve) => {
    execFile(
      call.runscPath,
      [...call.globalArgs, ...args],
      { env: {}, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: MAX_OUTPUT },
      (error, stdout, stderr) => {
        const e = error as (NodeJS.ErrnoException & { killed?: boolean; code?: unknown }) | null;
        resolve({
          code: e ? (typeof e.code === "number" ? e.code : null) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
          timedOut: Boolean(e?.killed),
        });
      },
    );
  });
}

/**
 * SIGTERM to every process of the container but init, as the namespaces tier
 * does it: `kill(-1)` from a process run inside as the guest's user spares
 * init and the caller. (`runsc kill --all` would kill init as well, and the
 * program's own end would never be reported.)
 */
export async function runscTerminate(call: RunscCall, id: string): Promise<void> {
  await runsc(call, ["exec", "--user", "1000:1000", id, "/bin/sh", "-c", "kill -TERM -1"]);
}

/** Removes the container's state whatever it is doing (idempotent; errors are "already gone"). */
export async function runscDelete(call: RunscCall, id: string): Promise<void> {
  await runsc(call, ["delete", "--force", id], 30_000);
}
