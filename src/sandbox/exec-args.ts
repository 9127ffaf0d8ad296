/**
 * Pure builders of the warden-exec command line (the privileged step before
 * bubblewrap or runsc: mount, cgroups, rlimits, uid drop). See native/warden-exec.c.
 */
import { WardenError } from "../errors.js";
import { SANDBOX_UID } from "./bwrap-args.js";
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
  args.push(...workspaceArgs(o.workspace.mount, o.cgroupProcsFiles));
  for (const [name, value] of Object.entries(o.rlimits)) args.push("--rlimit", `${name}=${value}`);
  args.push("--uid", String(o.uid), "--gid", String(o.gid));
  return [...args, "--", o.bwrapPath, ...o.bwrapArgs];
}

/** How runsc's Sentry intercepts the program's system calls. */
export type RunscPlatform = "systrap" | "ptrace" | "kvm";
const PLATFORMS: readonly RunscPlatform[] = ["systrap", "ptrace", "kvm"];

/**
 * runsc's global flags, the same for every call (run, kill, delete, list):
 * runsc reads no state about them, so `kill` or `delete` without the flags of
 * the `run` would act on a different configuration.
 */
export function runscGlobalArgs(
  config: { readonly debugDir: string | null },
  platform: RunscPlatform,
  rootDir: string,
  debugDir: string | null = config.debugDir,
): string[] {
  if (!PLATFORMS.includes(platform))
    throw new WardenError("INTERNAL", `unknown runsc platform: ${platform}`);
  if (!rootDir.startsWith("/"))
    throw new WardenError("INTERNAL", "the runsc root must be an absolute path");
  const args = [
    "--root",
    rootDir,
    // No network stack at all inside: loopback only; egress goes through the
    // bridge to the proxy's Unix socket, never through a host interface.
    "--network=none",
    // The container may connect to host sockets we bind in (init's control
    // socket, the egress proxy), never create one on the host (create/all).
    "--host-uds=open",
    `--platform=${platform}`,
    // Warden fills the workspace and reads artifacts from the host side.
    "--file-access-mounts=shared",
  ];
  if (debugDir !== null) {
    if (!debugDir.startsWith("/"))
      throw new WardenError("INTERNAL", "the runsc debug dir must be an absolute path");
    // A trailing slash: one file per runsc command inside the directory.
    args.push("--debug", `--debug-log=${debugDir.replace(/\/*$/, "/")}`);
  }
  return args;
}

/** runsc's own rule for container ids, without a leading "-" (never a flag). */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;

export interface RunscExecArgsOptions {
  runscPath: string;
  /** From `runscGlobalArgs`. */
  globalArgs: readonly string[];
  /** Holds config.json (written by Warden, root-only). */
  bundleDir: string;
  containerId: string;
  cgroupProcsFiles: readonly string[];
  /**
   * Owner of the workspace and tmp directories: the container's uid, since
   * the gofer creates the program's files as that uid on the host tmpfs.
   * @default SANDBOX_UID (1000)
   */
  owner?: { uid: number; gid: number } | undefined;
  workspace: ExecArgsOptions["workspace"];
}

/**
 * warden-exec --runsc: the cgroups joined and the workspace mounted (or
 * joined) as for bubblewrap, then `runsc ... run --bundle DIR ID` as root.
 * Request data never becomes a flag: everything the program asks for is in
 * the bundle (written by Warden) or the request sent to init.
 */
export function buildRunscExecArgs(o: RunscExecArgsOptions): string[] {
  if (!CONTAINER_ID.test(o.containerId))
    throw new WardenError("INTERNAL", `bad runsc container id: ${JSON.stringify(o.containerId)}`);
  for (const path of [o.runscPath, o.bundleDir])
    if (!path.startsWith("/")) throw new WardenError("INTERNAL", `not an absolute path: ${path}`);
  const owner = o.owner ?? { uid: SANDBOX_UID, gid: SANDBOX_UID };
  const args = ["--runsc", "--control-fd", String(FD.control), "--workspace", o.workspace.dir];
  args.push(...workspaceArgs(o.workspace.mount, o.cgroupProcsFiles));
  // A Sentry's core dump would hold the guest's memory.
  args.push("--rlimit", "core=0");
  args.push("--uid", String(owner.uid), "--gid", String(owner.gid));
  return [
    ...args,
    "--",
    o.runscPath,
    ...o.globalArgs,
    "run",
    "--bundle",
    o.bundleDir,
    o.containerId,
  ];
}

/** The helper's workspace (a fresh mount or one joined) and cgroup flags, the same for both tiers. */
function workspaceArgs(
  mount: ExecArgsOptions["workspace"]["mount"],
  cgroupProcsFiles: readonly string[],
): string[] {
  const args: string[] = [];
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
  for (const file of cgroupProcsFiles) args.push("--cgroup", file);
  return args;
}
