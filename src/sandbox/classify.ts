/**
 * Turns what happened into the run's status. Pure, so every precedence rule
 * is unit-tested: Warden's own faults first, then what Warden did to the run
 * (kill, timeout, output cap), then what the kernel did (OOM, file size or
 * disk full), then the program's own exit.
 */
import { constants } from "node:os";
import type { RunStatus } from "./types.js";
import type { Outcome } from "./supervise.js";

export interface Classification {
  status: RunStatus;
  exitCode: number | null;
  signal: string | null;
  errorMessage?: string;
}

/** A workspace with less than this left counts as full (tmpfs rounds to pages). */
const DISK_FULL_SLACK_BYTES = 64 * 1024;

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(constants.signals).map(([name, num]) => [num, name]),
);

export function signalName(signal: number): string {
  return SIGNAL_NAMES.get(signal) ?? `SIG${signal}`;
}

type Facts = Pick<
  Outcome,
  | "program"
  | "bwrapStatus"
  | "errors"
  | "timedOut"
  | "cpuExceeded"
  | "outputExceeded"
  | "killedByUser"
  | "forceKilled"
  | "disk"
  | "pidsExceeded"
> & { oomKills: number };

export function classify(f: Facts): Classification {
  let exitCode: number | null = null;
  let signal: string | null = null;
  if (f.program && "exitCode" in f.program) exitCode = f.program.exitCode;
  else if (f.program) signal = signalName(f.program.signal);
  // gVisor has no RLIMIT_NPROC: a fork bomb fills the host's pids.max and
  // runsc's kernel dies with the program, as if it had been SIGKILLed.
  else if (f.forceKilled || f.pidsExceeded) signal = "SIGKILL";

  const base = { exitCode, signal };
  if (f.killedByUser) return { status: "killed", ...base };
  if (f.timedOut || f.cpuExceeded || signal === "SIGXCPU") return { status: "timeout", ...base };
  if (f.outputExceeded) return { status: "output_limit", ...base };

  const failed = exitCode !== 0;
  if (f.oomKills > 0 && failed) return { status: "memory_limit", ...base };
  if (f.pidsExceeded && !f.program) return { status: "failed", ...base };
  const diskFull =
    f.disk !== null && (f.disk.freeBytes < DISK_FULL_SLACK_BYTES || f.disk.freeInodes === 0);
  if (signal === "SIGXFSZ" || (diskFull && failed)) return { status: "disk_limit", ...base };

  if (!f.program) {
    // The program never reported: the sandbox itself failed to start or died.
    const why =
      f.errors.length > 0 ? f.errors.join("; ") : `sandbox exited with status ${f.bwrapStatus}`;
    return { status: "error", ...base, errorMessage: why };
  }
  if (f.errors.length > 0) return { status: "error", ...base, errorMessage: f.errors.join("; ") };
  return { status: exitCode === 0 ? "completed" : "failed", ...base };
}
