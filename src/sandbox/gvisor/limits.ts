/**
 * The cgroup of a gVisor box holds runsc's own processes as well as the
 * program's: the gofer, the Sentry and its stubs (about 15 MiB and 85 tasks
 * idle, measured). Without room for them a small limit kills the Sentry
 * before the program starts (docs/isolation-gvisor.md).
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { GvisorConfig } from "../../config/gvisor-config.js";
import type { Cgroup, CgroupLimits } from "../cgroups/index.js";
import { MiB } from "../exec-args.js";
import type { SandboxLimits } from "../types.js";

export function gvisorCgroupLimits(
  limits: SandboxLimits,
  gvisor: Pick<GvisorConfig, "memoryOverheadMb" | "pidsOverhead">,
): CgroupLimits {
  return {
    memoryBytes: (limits.memoryMb + gvisor.memoryOverheadMb) * MiB,
    // Each guest task is a host thread of the Sentry (ptrace: a stub too).
    pids: 2 * limits.pids + gvisor.pidsOverhead,
    cpuPercent: limits.cpuPercent,
  };
}

/** `max N` of a pids.events file: how often a fork was refused at pids.max. */
export function parsePidsEventsMax(text: string): number {
  const m = /^max (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * Whether the cgroup ever refused a task at pids.max (v1 and v2 keep
 * pids.events beside cgroup.procs). gVisor ignores RLIMIT_NPROC, so a fork
 * bomb ends there and takes the Sentry with it.
 */
export async function pidsLimitHit(cgroup: Cgroup): Promise<boolean> {
  for (const procs of cgroup.procsFiles) {
    const text = await readFile(join(dirname(procs), "pids.events"), "utf8").catch(() => "");
    if (parsePidsEventsMax(text) > 0) return true;
  }
  return false;
}
