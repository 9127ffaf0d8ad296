import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Controllers Warden needs; cpu is optional on v1 hosts without it (no CPU quota then). */
export const REQUIRED_CONTROLLERS = ["memory", "pids"] as const;
export const WANTED_CONTROLLERS = ["memory", "pids", "cpu", "cpuacct", "freezer"] as const;

export type CgroupMode = "v2" | "v1" | "hybrid" | "none";

export interface CgroupLayout {
  /**
   * `v2`: controllers on the unified hierarchy. `v1`: controllers on legacy
   * hierarchies only. `hybrid`: v1 controllers plus a (controller-less) v2
   * mount — driven exactly like v1. `none`: unusable.
   */
  mode: CgroupMode;
  /** Mount point of the unified hierarchy, when there is one. */
  unifiedMount: string | null;
  /** Controllers the unified hierarchy offers. */
  unifiedControllers: string[];
  /** v1: controller name → its hierarchy's mount point. */
  v1Mounts: Record<string, string>;
  /** Required controllers that are nowhere to be found. */
  missing: string[];
  /**
   * Mount points of every v1 hierarchy, with those Warden does not drive
   * (blkio, cpuset, devices, name=systemd...): runsc makes cgroups there.
   */
  v1Hierarchies?: string[];
}

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** Parses /proc/self/mountinfo lines: `id parent maj:min root mount opts [tags] - fstype source superopts`. */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(" ");
    const right = line.slice(sep + 3).split(" ");
    const mountPoint = left[4];
    const fsType = right[0];
    if (!mountPoint || !fsType) continue;
    entries.push({
      mountPoint: unescapeMountPath(mountPoint),
      fsType,
      superOptions: (right[2] ?? "").split(","),
    });
  }
  return entries;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
export function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Works out which cgroup version drives the controllers. `readControllers`
 * returns the content of a unified mount's cgroup.controllers.
 */
export function detectCgroupLayout(
  mountInfo: string,
  readControllers: (mountPoint: string) => string = (m) =>
    readFileSync(join(m, "cgroup.controllers"), "utf8"),
): CgroupLayout {
  const mounts = parseMountInfo(mountInfo);
  const unified = mounts.find((m) => m.fsType === "cgroup2");
  let unifiedControllers: string[] = [];
  if (unified) {
    try {
      unifiedControllers = readControllers(unified.mountPoint).trim().split(/\s+/).filter(Boolean);
    } catch {
      unifiedControllers = [];
    }
  }
  const v1Mounts: Record<string, string> = {};
  const v1Hierarchies: string[] = [];
  for (const m of mounts) {
    if (m.fsType !== "cgroup") continue;
    if (!v1Hierarchies.includes(m.mountPoint)) v1Hierarchies.push(m.mountPoint);
    for (const option of m.superOptions)
      if ((WANTED_CONTROLLERS as readonly string[]).includes(option))
        v1Mounts[option] ??= m.mountPoint;
  }
  const unifiedHas = (c: string): boolean => unifiedControllers.includes(c);
  if (unified && REQUIRED_CONTROLLERS.every(unifiedHas)) {
    return {
      mode: "v2",
      unifiedMount: unified.mountPoint,
      unifiedControllers,
      v1Mounts,
      missing: [],
      v1Hierarchies,
    };
  }
  const missing = REQUIRED_CONTROLLERS.filter((c) => !v1Mounts[c]);
  const mode: CgroupMode = missing.length > 0 ? "none" : unified ? "hybrid" : "v1";
  return {
    mode,
    unifiedMount: unified?.mountPoint ?? null,
    unifiedControllers,
    v1Mounts,
    missing,
    v1Hierarchies,
  };
}
