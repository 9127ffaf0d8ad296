/**
 * Per-process and per-host caps that bind before Warden's own limits once
 * many sandboxes are live: Warden holds a few pipe descriptors per running
 * sandbox, and every sandbox is at least four processes (warden-exec, the
 * two bubblewrap processes, warden-init) before its program starts one.
 *
 * Node raises its soft RLIMIT_NOFILE to the hard limit when it starts, so
 * the hard limit is what counts; it is inherited from the launcher (a
 * systemd unit's LimitNOFILE=, a container runtime's ulimit) and only the
 * launcher can raise it. These are warnings: the configured limits still
 * hold, and a start past the cap fails one run cleanly rather than Warden.
 */
import { readFileSync } from "node:fs";
import type { Config } from "../config/schema.js";

/** Descriptors Warden holds per live sandbox (stdio, control and status pipes, margin). */
export const FDS_PER_SANDBOX = 8;
/** Host processes per live sandbox before its program forks (warden-exec, bwrap ×2, init, program). */
export const PROCESSES_PER_SANDBOX = 5;

export interface HostCaps {
  /** Open files Warden may hold (the soft limit, which Node raised to the hard one). */
  openFiles: number;
  /** kernel.pid_max: process and thread ids on the whole host. */
  pidMax: number;
}

export function readHostCaps(): HostCaps {
  const limits = readFileSync("/proc/self/limits", "utf8");
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1] ?? "unlimited";
  const pidMax = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8").trim());
  return { openFiles: soft === "unlimited" ? Infinity : Number(soft), pidMax };
}

/** Sandboxes that can be live at once: executions, sessions and policy analyses. */
export function liveSandboxCap(config: Config): number {
  return config.maxConcurrentSandboxes + config.maxSessions + config.policy.maxConcurrentAnalyses;
}

/** What falls short of the configured limits, as sentences for the log (empty when nothing). */
export function processLimitProblems(config: Config, caps: HostCaps): string[] {
  const live = liveSandboxCap(config);
  const problems: string[] = [];
  const fds = live * FDS_PER_SANDBOX + config.server.connections.maxConnections + 256;
  if (caps.openFiles < fds)
    problems.push(
      `open files limit ${caps.openFiles} is below the ~${fds} that ${live} live sandboxes and ${config.server.connections.maxConnections} connections need: raise the hard limit where Warden is launched (systemd LimitNOFILE=, ulimit -Hn), or lower maxConcurrentSandboxes`,
    );
  const pids = live * PROCESSES_PER_SANDBOX;
  if (caps.pidMax < pids * 2)
    problems.push(
      `kernel.pid_max ${caps.pidMax} leaves little room for ${live} live sandboxes (${pids}+ processes): raise it (sysctl kernel.pid_max=4194304) or lower maxConcurrentSandboxes`,
    );
  // Past the range a start fails with SANDBOX_BUSY; a warm pool's boxes hold uids too.
  if (config.sandbox.uidCount < live)
    problems.push(
      `sandbox.uidCount ${config.sandbox.uidCount} is below the ${live} sandboxes that may be live at once (executions, sessions, analyses): widen the uid range`,
    );
  return problems;
}
