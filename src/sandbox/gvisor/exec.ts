/**
 * warden-exec's command line in --runsc mode (native/warden-exec.c): mount or
 * join the box's workspace, join the cgroup, then exec runsc as root with an
 * empty environment. No fd but stdio is passed on (init uses its socket), no
 * rlimit is set on runsc itself (the container's are in the spec), and
 * --uid/--gid only name the owner of the workspace directories: the guest's
 * uid 1000, as the gofer writes for it.
 */
import { SANDBOX_UID } from "../bwrap-args.js";
import { FD, type ExecArgsOptions } from "../exec-args.js";

export interface RunscExecOptions {
  runscPath: string;
  /** Global flags, then `run --bundle DIR ID`. */
  runscArgs: readonly string[];
  cgroupProcsFiles: readonly string[];
  workspace: ExecArgsOptions["workspace"];
}

export function runscExecArgs(o: RunscExecOptions): string[] {
  const args = ["--control-fd", String(FD.control), "--runsc"];
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
  args.push("--uid", String(SANDBOX_UID), "--gid", String(SANDBOX_UID));
  return [...args, "--", o.runscPath, ...o.runscArgs];
}
