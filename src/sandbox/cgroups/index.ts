import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { WardenError } from "../../errors.js";
import { detectCgroupLayout, type CgroupLayout } from "./detect.js";
import type { CgroupDriver } from "./cgroup.js";
import { CgroupV1Driver } from "./v1.js";
import { CgroupV2Driver } from "./v2.js";

export type { Cgroup, CgroupAccounting, CgroupDriver, CgroupLimits } from "./cgroup.js";
export { detectCgroupLayout, type CgroupLayout, type CgroupMode } from "./detect.js";
export type { CgroupSelector } from "./cgroup.js";
export { gvisorLimits, type GvisorOverheads } from "./gvisor.js";

export function readCgroupLayout(): CgroupLayout {
  return detectCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8"));
}

/** The driver for this host's cgroups, or ISOLATION_UNAVAILABLE saying what is missing. */
export function createCgroupDriver(
  parent: string,
  layout: CgroupLayout = readCgroupLayout(),
  cpuCount: number = availableParallelism(),
): CgroupDriver {
  switch (layout.mode) {
    case "v2":
      return new CgroupV2Driver(layout.unifiedMount!, parent, layout.unifiedControllers, cpuCount);
    case "v1":
    case "hybrid":
      return new CgroupV1Driver(layout.v1Mounts, parent, cpuCount, layout.v1Hierarchies ?? []);
    case "none":
      throw new WardenError(
        "ISOLATION_UNAVAILABLE",
        `no usable cgroup hierarchy: missing controllers ${layout.missing.join(", ")}`,
      );
  }
}
