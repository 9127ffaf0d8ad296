import { describe, expect, it } from "vitest";
import {
  buildBwrapArgs,
  envArgs,
  INIT_PATH,
  namespaceArgs,
  privateArgs,
  systemArgs,
  type BwrapLayout,
} from "../../src/sandbox/bwrap-args.js";

const layout: BwrapLayout = {
  system: [
    { kind: "dir", path: "/usr" },
    { kind: "symlink", path: "/bin", target: "usr/bin" },
  ],
  etcDir: "/run/warden/etc/b1-2-etc",
  workspaceDir: "/run/warden/boxes/b1/workspace",
  tmpDir: "/run/warden/boxes/b1/tmp",
  initPath: "/run/warden/lib/warden-init",
};

/** The value following `flag` each time it appears. */
function valuesOf(args: string[], flag: string, width = 1): string[][] {
  const out: string[][] = [];
  args.forEach((a, i) => {
    if (a === flag) out.push(args.slice(i + 1, i + 1 + width));
  });
  return out;
}

describe("bwrap argv builders", () => {
  it("unshares every namespace and forbids new user namespaces", () => {
    const args = namespaceArgs();
    for (const flag of [
      "--unshare-user",
      "--unshare-pid",
      "--unshare-ipc",
      "--unshare-uts",
      "--unshare-net",
      "--unshare-cgroup",
      "--disable-userns",
      "--die-with-parent",
      "--new-session",
      "--as-pid-1",
    ])
      expect(args).toContain(flag);
    expect(valuesOf(args, "--uid")).toEqual([["1000"]]);
  });

  it("binds system dirs read-only and recreates merged-/usr symlinks", () => {
    expect(systemArgs(layout.system)).toEqual([
      "--ro-bind",
      "/usr",
      "/usr",
      "--symlink",
      "usr/bin",
      "/bin",
    ]);
  });

  it("gives the sandbox its own /proc, a minimal /dev and only its own workspace", () => {
    const args = privateArgs(layout, 1 << 20);
    expect(valuesOf(args, "--proc")).toEqual([["/proc"]]);
    expect(valuesOf(args, "--dev")).toEqual([["/dev"]]);
    expect(valuesOf(args, "--tmpfs")).toEqual([["/dev/shm"]]);
    expect(valuesOf(args, "--size")).toEqual([[String(1 << 20)]]);
    expect(valuesOf(args, "--remount-ro")).toEqual([["/dev"]]);
    expect(valuesOf(args, "--bind", 2)).toEqual([
      [layout.workspaceDir, "/workspace"],
      [layout.tmpDir, "/tmp"],
    ]);
    expect(args.join(" ")).not.toContain("/sys");
    // /home/user is the workspace (E2B's paths), in a /home made here, not bound from the host.
    expect(valuesOf(args, "--symlink", 2)).toEqual([["/workspace", "/home/user"]]);
    expect(valuesOf(args, "--dir")).toEqual([["/home"]]);
  });

  it("clears the environment before setting exactly the given variables", () => {
    expect(envArgs({ A: "1", B: "two words" })).toEqual([
      "--clearenv",
      "--setenv",
      "A",
      "1",
      "--setenv",
      "B",
      "two words",
    ]);
  });

  it("assembles a full command line ending in init, which waits for its request", () => {
    const args = buildBwrapArgs({
      layout,
      mounts: [{ source: "/run/warden/lib/esbuild", target: "/.warden/lib/esbuild" }],
      env: { PATH: "/usr/bin" },
      cwd: "/workspace",
      shmBytes: 1 << 20,
      seccompFd: 5,
      statusFd: 4,
      requestFd: 6,
    });
    expect(valuesOf(args, "--seccomp")).toEqual([["5"]]);
    expect(valuesOf(args, "--ro-bind", 2)).toContainEqual([layout.etcDir, "/etc"]);
    expect(valuesOf(args, "--ro-bind", 2)).toContainEqual([
      "/run/warden/lib/esbuild",
      "/.warden/lib/esbuild",
    ]);
    // Everything else read-only, applied after all binds.
    const remount = args.lastIndexOf("--remount-ro");
    expect(args[remount + 1]).toBe("/");
    expect(remount).toBeGreaterThan(args.lastIndexOf("--bind"));
    const tail = args.slice(args.indexOf("--") + 1);
    expect(tail).toEqual([INIT_PATH, "4", "6"]);
    const warm = buildBwrapArgs({
      layout,
      mounts: [],
      env: {},
      cwd: "/workspace",
      shmBytes: 1 << 20,
      seccompFd: 5,
      statusFd: 4,
      requestFd: 6,
      warm: ["/usr/bin/python3", "-u", "/.warden/warm/warm.py"],
    });
    expect(warm.slice(warm.indexOf("--") + 1)).toEqual([
      INIT_PATH,
      "4",
      "6",
      "--warm",
      "/usr/bin/python3",
      "-u",
      "/.warden/warm/warm.py",
    ]);
    // The host's /etc, /root, /home are never bound.
    for (const [source] of valuesOf(args, "--ro-bind", 2))
      expect(source).not.toMatch(/^\/(etc|root|home)(\/|$)/);
  });
});
