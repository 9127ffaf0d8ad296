/**
 * runsc's command lines other than `run` (which warden-exec starts): the stop
 * at the deadline, the teardown, the probe. Every call repeats the same global
 * flags (runscGlobalArgs), or runsc would look in another state root or refuse.
 */
import { spawn } from "node:child_process";

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

/** At most this much of runsc's output is kept (errors are one line; the janitor's `list` is longer). */
const MAX_OUTPUT = 1 << 20;

/**
 * Runs runsc with an empty environment and a fixed argv (nothing from a
 * request is ever a flag); killed at `timeoutMs`. Output past MAX_OUTPUT is
 * dropped, not fatal: runsc is never killed for talking.
 */
export function runsc(
  call: RunscCall,
  args: readonly string[],
  timeoutMs = 10_000,
): Promise<RunscOutcome> {
  return new Promise((resolve) => {
    const child = spawn(call.runscPath, [...call.globalArgs, ...args], {
      env: {},
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out = { stdout: "", stderr: "" };
    const collect = (key: "stdout" | "stderr") => (chunk: Buffer) => {
      if (out[key].length < MAX_OUTPUT)
        out[key] += chunk.toString("utf8", 0, MAX_OUTPUT - out[key].length);
    };
    child.stdout.on("data", collect("stdout"));
    child.stderr.on("data", collect("stderr"));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: null, stdout: "", stderr: error.message, timedOut });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, ...out, timedOut });
    });
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
