import { describe, expect, it } from "vitest";
import { buildExecArgs, FD, rlimitsFor, workspaceInodes } from "../../src/sandbox/exec-args.js";
import type { SandboxLimits } from "../../src/sandbox/types.js";

const limits: SandboxLimits = {
  timeoutMs: 1000,
  killGraceMs: 100,
  memoryMb: 128,
  cpuPercent: 50,
  diskMb: 10,
  pids: 32,
  outputBytes: 4096,
  openFiles: 64,
};

describe("warden-exec argv", () => {
  it("sets rlimits: no core dumps, files no bigger than the disk, bounded fds", () => {
    const r = rlimitsFor(limits);
    expect(r.core).toBe(0);
    expect(r.fsize).toBe(10 * 1024 * 1024);
    expect(r.nofile).toBe(64);
    expect(r.stack).toBe(128 * 1024 * 1024);
    expect(r.cpu).toBeUndefined();
    expect(rlimitsFor({ ...limits, cpuTimeMs: 2500 }).cpu).toBe(4);
  });

  it("mounts, joins every cgroup, drops to the uid and runs bwrap", () => {
    const args = buildExecArgs({
      bwrapPath: "/usr/bin/bwrap",
      bwrapArgs: ["--unshare-all", "--", "/x"],
      uid: 700_001,
      gid: 700_001,
      cgroupProcsFiles: [
        "/sys/fs/cgroup/memory/warden/b/cgroup.procs",
        "/sys/fs/cgroup/pids/warden/b/cgroup.procs",
      ],
      rlimits: { core: 0 },
      workspace: { dir: "/run/warden/boxes/b", mount: { bytes: 1024, inodes: 1024 } },
    });
    const sep = args.indexOf("--");
    expect(args.slice(sep + 1)).toEqual(["/usr/bin/bwrap", "--unshare-all", "--", "/x"]);
    const opts = args.slice(0, sep).join(" ");
    expect(opts).toContain(`--control-fd ${FD.control}`);
    expect(opts).toContain(
      `--keep-fd ${FD.status} --keep-fd ${FD.seccomp} --keep-fd ${FD.request}`,
    );
    expect(opts).toContain(
      "--workspace /run/warden/boxes/b --mount --mount-bytes 1024 --mount-inodes 1024",
    );
    expect(opts).toContain(
      "--cgroup /sys/fs/cgroup/memory/warden/b/cgroup.procs --cgroup /sys/fs/cgroup/pids",
    );
    expect(opts).toContain("--rlimit core=0");
    expect(opts).toContain("--uid 700001 --gid 700001");
  });

  it("joins the mount namespace of the box's first run for later runs", () => {
    const args = buildExecArgs({
      bwrapPath: "/b",
      bwrapArgs: [],
      uid: 1,
      gid: 1,
      cgroupProcsFiles: [],
      rlimits: {},
      workspace: { dir: "/w", mount: { join: 4242 } },
    });
    expect(args).not.toContain("--mount");
    expect(args.join(" ")).toContain("--workspace /w --join 4242");
  });

  it("bounds inodes with the disk size", () => {
    expect(workspaceInodes(1)).toBe(1024);
    expect(workspaceInodes(512)).toBe(512 * 256);
  });
});
