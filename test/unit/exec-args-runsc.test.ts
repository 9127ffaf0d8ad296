import { describe, expect, it } from "vitest";
import {
  buildRunscExecArgs,
  FD,
  runscGlobalArgs,
  type RunscPlatform,
} from "../../src/sandbox/exec-args.js";

const ROOT = "/run/warden/runsc";
/** Flags that would open the host to the container: never emitted. */
const FORBIDDEN =
  /^--?(host-uds=(create|all)|network=(host|sandbox)|TESTONLY|allow-flag-override)/i;

function base(extra: Partial<Parameters<typeof buildRunscExecArgs>[0]> = {}) {
  return buildRunscExecArgs({
    runscPath: "/usr/bin/runsc",
    globalArgs: runscGlobalArgs({ debugDir: null }, "ptrace", ROOT),
    bundleDir: "/run/warden/gvisor/b1-1",
    containerId: "b1-1",
    cgroupProcsFiles: ["/sys/fs/cgroup/memory/warden/b1-1/cgroup.procs"],
    workspace: { dir: "/run/warden/boxes/b1", mount: { bytes: 8 << 20, inodes: 2048 } },
    ...extra,
  });
}

describe("runsc global flags", () => {
  it("no network, open-only host sockets, the platform, shared mounts, one root", () => {
    expect(runscGlobalArgs({ debugDir: null }, "ptrace", ROOT)).toEqual([
      "--root",
      ROOT,
      "--network=none",
      "--host-uds=open",
      "--platform=ptrace",
      "--file-access-mounts=shared",
    ]);
  });

  it("debug logs only when a directory is configured, one file per command", () => {
    const args = runscGlobalArgs({ debugDir: "/var/log/runsc" }, "kvm", ROOT);
    expect(args).toContain("--platform=kvm");
    expect(args.slice(-2)).toEqual(["--debug", "--debug-log=/var/log/runsc/"]);
    const override = runscGlobalArgs({ debugDir: "/a" }, "systrap", ROOT, "/probe/");
    expect(override.at(-1)).toBe("--debug-log=/probe/");
    expect(runscGlobalArgs({ debugDir: "/a" }, "ptrace", ROOT, null)).not.toContain("--debug");
  });

  it("never emits a flag that opens the host, whatever the input", () => {
    for (const platform of ["systrap", "ptrace", "kvm"] as const)
      for (const debugDir of [null, "/d"]) {
        const global = runscGlobalArgs({ debugDir }, platform, ROOT);
        for (const args of [global, base({ globalArgs: global })]) {
          expect(args.filter((a) => FORBIDDEN.test(a))).toEqual([]);
          expect(args.filter((a) => a.startsWith("--host-uds"))).toEqual(["--host-uds=open"]);
          expect(args.filter((a) => a.startsWith("--network"))).toEqual(["--network=none"]);
        }
      }
  });

  it("refuses an unknown platform and relative paths", () => {
    expect(() => runscGlobalArgs({ debugDir: null }, "host" as RunscPlatform, ROOT)).toThrow(
      /platform/,
    );
    expect(() => runscGlobalArgs({ debugDir: null }, "ptrace", "runsc")).toThrow(/absolute/);
    expect(() => runscGlobalArgs({ debugDir: "d" }, "ptrace", ROOT)).toThrow(/absolute/);
  });
});

describe("warden-exec --runsc argv", () => {
  it("mounts, joins the cgroups, stays root and runs `runsc run`", () => {
    const args = base();
    const sep = args.indexOf("--");
    const opts = args.slice(0, sep);
    expect(opts[0]).toBe("--runsc");
    expect(opts.join(" ")).toContain(`--control-fd ${FD.control}`);
    expect(opts.join(" ")).toContain(
      "--workspace /run/warden/boxes/b1 --mount --mount-bytes 8388608 --mount-inodes 2048",
    );
    expect(opts.join(" ")).toContain("--cgroup /sys/fs/cgroup/memory/warden/b1-1/cgroup.procs");
    // Only the core limit for runsc itself; the program's are in the bundle.
    expect(opts.filter((a) => a.startsWith("core=") || a.includes("="))).toEqual(["core=0"]);
    // The workspace belongs to the container's uid (the gofer writes as it).
    expect(opts.join(" ")).toContain("--uid 1000 --gid 1000");
    // No fd goes to a root process; nothing of the bubblewrap mode's.
    expect(opts).not.toContain("--keep-fd");
    expect(args.slice(sep + 1)).toEqual([
      "/usr/bin/runsc",
      ...runscGlobalArgs({ debugDir: null }, "ptrace", ROOT),
      "run",
      "--bundle",
      "/run/warden/gvisor/b1-1",
      "b1-1",
    ]);
  });

  it("joins the holder's namespace for a box's later runs, and binds environments", () => {
    expect(base({ workspace: { dir: "/w", mount: { join: 77 } } }).join(" ")).toContain(
      "--runsc --control-fd 3 --workspace /w --join 77 --cgroup",
    );
    const binds = base({
      workspace: {
        dir: "/w",
        mount: { bytes: 1, inodes: 1, binds: [{ source: "/data/env/x", name: "env0" }] },
      },
    });
    expect(binds.join(" ")).toContain("--ro-bind /data/env/x env0");
    expect(base({ owner: { uid: 5, gid: 6 } }).join(" ")).toContain("--uid 5 --gid 6");
  });

  it("refuses a container id that runsc would read as a flag or a path", () => {
    for (const id of ["-x", "--network=host", "a/b", "", "a b", "x".repeat(200)])
      expect(() => base({ containerId: id })).toThrow(/container id/);
    expect(() => base({ bundleDir: "rel" })).toThrow(/absolute/);
  });
});
