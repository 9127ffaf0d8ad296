/**
 * What the gVisor tier changes about a box's cgroup (docs/isolation.md):
 * room for gVisor's own kernel, and the sweep of the cgroups runsc makes
 * by itself in v1 hierarchies Warden does not drive.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { isErrno, killUntilEmpty, readPids, removeDir, selects } from "./cgroup.js";
import type { CgroupLimits, CgroupSelector } from "./cgroup.js";

const MiB = 1024 * 1024;

/** The part of `sandbox.gvisor` the limits depend on. */
export interface GvisorOverheads {
  memoryOverheadMb: number;
  pidsOverhead: number;
}

/**
 * A run's limits as a gVisor box's cgroup needs them. The cgroup holds the
 * Sentry, the gofer and their stubs beside the program (measured idle: 15 MiB
 * and 85 tasks), and below that the Sentry itself panics instead of the
 * program getting ENOMEM/EAGAIN. Pids are doubled because each guest thread
 * may cost a host stub thread under the ptrace platform. CPU stays as asked:
 * the Sentry's CPU time is the program's cost.
 */
export function gvisorLimits(limits: CgroupLimits, gvisor: GvisorOverheads): CgroupLimits {
  return {
    memoryBytes: limits.memoryBytes + gvisor.memoryOverheadMb * MiB,
    pids: 2 * limits.pids + gvisor.pidsOverhead,
    cpuPercent: limits.cpuPercent,
  };
}

/**
 * Kills the members of and removes every selected cgroup directly under
 * `<hierarchy>/<parent>/` in each hierarchy; returns how many went. On v1,
 * runsc makes the box's cgroup name in every hierarchy it finds (blkio,
 * cpuset, devices, name=systemd...), and a runsc killed with its cgroup never
 * removes them: they would pile up, one per crashed gVisor run.
 */
export async function sweepHierarchies(
  hierarchies: readonly string[],
  parent: string,
  select: CgroupSelector,
): Promise<number> {
  let removed = 0;
  for (const hierarchy of new Set(hierarchies)) {
    const dir = join(hierarchy, parent);
    let names: string[];
    try {
      const entries = await readdir(dir, { withFileTypes: true });
      names = entries.filter((e) => e.isDirectory()).map((e) => e.name);
    } catch (error) {
      if (isErrno(error, "ENOENT")) continue;
      throw error;
    }
    for (const name of names) {
      if (!selects(select, name)) continue;
      const group = join(dir, name);
      const procs = join(group, "cgroup.procs");
      await killUntilEmpty(async () => readPids(procs));
      await removeDir(group);
      removed++;
    }
  }
  return removed;
}
