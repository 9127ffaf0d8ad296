/**
 * What a gVisor box could leave on the host besides what a bubblewrap box
 * could (DESIGN-18 §3, leftovers): a runsc process naming it, a container in
 * `runsc list`, its bundle directory, runsc state or lock files for its id,
 * and a cgroup of its name in a v1 hierarchy Warden's driver does not use
 * (runsc makes the name in blkio, cpuset, devices, systemd...). Every check
 * holds trivially for a namespaces box, so `expectNothingLeft` runs them all.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { SandboxHost } from "../../src/sandbox/host.js";

/** Host processes running runsc whose command line names the box. */
export function runscProcessesOf(boxId: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes("runsc") && cmdline.includes(boxId)) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/** Containers of the box that `runsc list` still knows in Warden's runsc root. */
export function runscContainersOf(host: SandboxHost, runscPath: string, boxId: string): string[] {
  const root = join(host.runDir.root, "runsc");
  if (!existsSync(root) || !existsSync(runscPath)) return [];
  const out = execFileSync(runscPath, ["--root", root, "list", "-quiet"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  return out.split("\n").filter((id) => id.includes(boxId));
}

/** Bundle dirs (`<runDir>/gvisor/<boxId>-<n>`) and runsc state or lock files for the box. */
export function runscFilesOf(host: SandboxHost, boxId: string): string[] {
  const found: string[] = [];
  for (const dir of [join(host.runDir.root, "gvisor"), join(host.runDir.root, "runsc")]) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) if (name.includes(boxId)) found.push(join(dir, name));
  }
  return found;
}

/** The box's cgroups in every mounted cgroup hierarchy, the driver's or not (v1 and v2). */
export function cgroupsInEveryHierarchy(cgroupParent: string, boxId: string): string[] {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(" ")[4]!);
  const found: string[] = [];
  for (const mount of new Set(mounts)) {
    const parent = join(mount, cgroupParent);
    if (!existsSync(parent)) continue;
    for (const name of readdirSync(parent))
      if (name.startsWith(boxId)) found.push(join(parent, name));
  }
  return found;
}
