/**
 * Pure builder of the warden-exec command line (the privileged step before
 * bubblewrap: mount, cgroups, rlimits, uid drop). See native/warden-exec.c.
 */
import type { SandboxLimits } from "./types.js";

export const MiB = 1024 * 1024;

/** fds as numbered in the helper's table (Node's stdio array order). */
export const FD = { control: 3, status: 4, seccomp: 5, request: 6 } as const;

/**
 * A host directory the mounting helper binds read-only at `<dir>/<name>`, as
 * root, in the box's mount namespace: bubblewrap opens its bind sources as the
 * sandbox uid, which cannot reach the data dir (0700) where environments live.
 */
export interface HeldBind {
  source: string;
  /** One plain component, [a-z0-9]+. */
  name: string;
}

export interface ExecArgsOptions {
  bwrapPath: string;
  bwrapArgs: readonly string[];
  uid: number;
  gid: number;
  cgroupProcsFiles: readonly string[];
  rlimits: Readonly<Record<string, number>>;
  workspace: {
    dir: string;
    /**
     * A box's first run mounts the workspace in a mount namespace of its own
     * and holds it until Warden lets go; later runs join it (the holder's pid).
     */
    mount: { bytes: number; inodes: number; binds?: readonly HeldBind[] } | { join: number };
  };
}

/**
 * rlimits every process starts with: no core dumps (they leak memory images
 * and fill disks), files no larger than the disk, a bounded fd table, a stack
 * that fits the memory limit, and a per-uid process cap backing pids.max.
 */
export function rlimitsFor(limits: SandboxLimits): Record<string, number> {
  const r: Record<string, number> = {
    core: 0,
    fsize: limits.diskMb * MiB,
    nofile: limits.openFiles,
    stack: Math.min(limits.memoryMb * MiB, 256 * MiB),
    // bubblewrap's own processes run under the same uid.
    nproc: limits.pids + 8,
  };
  // A per-process backstop; the cgroup-wide CPU limit is enforced by polling.
  if (limits.cpuTimeMs !== undefined) r.cpu = Math.ceil(limits.cpuTimeMs / 1000) + 1;
  return r;
}

/** Inodes of the workspace tmpfs: empty files cost kernel memory but no bytes. */
export function workspaceInodes(diskMb: number): number {
  return Math.max(1024, diskMb * 256);
}

export function buildExecArgs(o: ExecArgsOptions): string[] {
  const args = ["--control-fd", String(FD.control)];
  args.push("--keep-fd", String(FD.status), "--keep-fd", String(FD.seccomp));
  args.push("--keep-fd", String(FD.request));
  args.push("--workspace", o.workspace.dir);
  const mount = o.workspace.mount;
  if ("join" in mount) args.push("--join", String(mount.join));
  else {
    args.push(
      "--mount",
      "--mount-bytes",
      String(mount.bytes),
      "--mount-inodes",
      String(mount.inodes),
    );
    for (const bind of mount.binds ?? []) args.push("--ro-bind", bind.source, bind.name);
  }
  for (const file of o.cgroupProcsFiles) args.push("--cgroup", file);
  for (const [name, value] of Object.entries(o.rlimits)) args.push("--rlimit", `${name}=${value}`);
  args.push("--uid", String(o.uid), "--gid", String(o.gid));
  return [...args, "--", o.bwrapPath, ...o.bwrapArgs];
}
