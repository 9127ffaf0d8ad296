/**
 * The cgroup of a gVisor box holds runsc's own processes as well as the
 * program's: the gofer, the Sentry and its stubs (about 15 MiB and 85 tasks
 * idle, measured). Without room for them a small limit kills the Sentry
 * before the program starts (docs/isolation.md).
 */
import type { GvisorConfig } from "../../config/gvisor-config.js";
import { gvisorLimits, type CgroupLimits } from "../cgroups/index.js";
import { MiB } from "../exec-args.js";
import type { SandboxLimits } from "../types.js";

/** A run's limits as its cgroup needs them: the overheads are cgroups/gvisor.ts's gvisorLimits. */
export function gvisorCgroupLimits(
  limits: SandboxLimits,
  gvisor: Pick<GvisorConfig, "memoryOverheadMb" | "pidsOverhead">,
): CgroupLimits {
  const asked = {
    memoryBytes: limits.memoryMb * MiB,
    pids: limits.pids,
    cpuPercent: limits.cpuPercent,
  };
  return gvisorLimits(asked, gvisor);
}
