import { describe, expect, it } from "vitest";
import {
  buildOciSpec,
  CONTROL_SOCKET,
  type OciSpecOptions,
} from "../../src/sandbox/gvisor/bundle.js";
import { skeletonContent, skeletonDigest } from "../../src/sandbox/gvisor/rootfs.js";
import { gvisorCgroupLimits } from "../../src/sandbox/gvisor/limits.js";
import {
  describeProbe,
  missingFlags,
  parsePlatforms,
  parseRunscVersion,
} from "../../src/sandbox/gvisor/probe.js";
import { rlimitsFor } from "../../src/sandbox/exec-args.js";

const limits = {
  timeoutMs: 1000,
  killGraceMs: 0,
  memoryMb: 128,
  cpuPercent: 50,
  diskMb: 16,
  pids: 32,
  outputBytes: 1024,
  openFiles: 64,
};

const base: OciSpecOptions = {
  rootfs: "/run/warden/gvisor-rootfs/abc",
  system: [
    { kind: "dir", path: "/usr" },
    { kind: "symlink", path: "/bin", target: "usr/bin" },
  ],
  etcDir: "/run/warden/etc/x",
  initPath: "/run/warden/lib/y/warden-init",
  workspaceDir: "/run/warden/boxes/b1/workspace",
  tmpDir: "/run/warden/boxes/b1/tmp",
  controlSocket: "/run/warden/boxes/b1-ctl-1/sock",
  mounts: [{ source: "/opt/jdk", target: "/opt/jdk" }],
  env: { PATH: "/usr/bin", HOME: "/workspace" },
  rlimits: rlimitsFor(limits),
  shmBytes: 128 << 20,
  cgroupsPath: "/warden/b1-1",
  resources: { memoryBytes: 160 << 20, pids: 192, cpuQuotaUs: 100000, cpuPeriodUs: 100000 },
};

type Spec = {
  root: { path: string; readonly: boolean };
  process: {
    user: { uid: number; gid: number; additionalGids: number[] };
    args: string[];
    env: string[];
    capabilities: Record<string, string[]>;
    noNewPrivileges: boolean;
    rlimits: { type: string; hard: number; soft: number }[];
    terminal: boolean;
  };
  mounts: { destination: string; type: string; source: string; options: string[] }[];
  linux: { namespaces: { type: string }[]; cgroupsPath: string; maskedPaths: string[] };
};
const spec = (o: Partial<OciSpecOptions> = {}) =>
  buildOciSpec({ ...base, ...o }) as unknown as Spec;
const mount = (s: Spec, dest: string) => s.mounts.find((m) => m.destination === dest);

describe("buildOciSpec", () => {
  it("has a read-only root, uid 1000, no capabilities and no new privileges", () => {
    const s = spec();
    expect(s.root).toEqual({ path: base.rootfs, readonly: true });
    expect(s.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [] });
    for (const set of Object.values(s.process.capabilities)) expect(set).toEqual([]);
    expect(Object.keys(s.process.capabilities).sort()).toEqual([
      "ambient",
      "bounding",
      "effective",
      "inheritable",
      "permitted",
    ]);
    expect(s.process.noNewPrivileges).toBe(true);
    expect(s.process.terminal).toBe(false);
    expect(s.process.env).toEqual(["PATH=/usr/bin", "HOME=/workspace"]);
  });

  it("makes no user namespace (runsc makes its own) and joins Warden's cgroup", () => {
    const s = spec();
    expect(s.linux.namespaces.map((n) => n.type).sort()).toEqual([
      "ipc",
      "mount",
      "network",
      "pid",
      "uts",
    ]);
    expect(s.linux.cgroupsPath).toBe("/warden/b1-1");
    expect(s.linux.maskedPaths).toContain("/proc/kcore");
  });

  it("maps every rlimit to its RLIMIT_ name, soft = hard", () => {
    const r = spec({ rlimits: rlimitsFor({ ...limits, cpuTimeMs: 2000 }) }).process.rlimits;
    expect(r.map((x) => x.type).sort()).toEqual([
      "RLIMIT_CORE",
      "RLIMIT_CPU",
      "RLIMIT_FSIZE",
      "RLIMIT_NOFILE",
      "RLIMIT_NPROC",
      "RLIMIT_STACK",
    ]);
    for (const x of r) expect(x.soft).toBe(x.hard);
    expect(r.find((x) => x.type === "RLIMIT_CORE")?.hard).toBe(0);
    expect(r.find((x) => x.type === "RLIMIT_FSIZE")?.hard).toBe(16 << 20);
  });

  it("mounts: /proc, a read-only /dev, an empty read-only /sys, a bounded /dev/shm, read-only system and /etc, rw workspace and tmp", () => {
    const s = spec();
    expect(mount(s, "/proc")?.type).toBe("proc");
    expect(mount(s, "/dev")?.options).toContain("ro");
    // An empty read-only tmpfs stands where runsc would mount its own sysfs.
    expect(mount(s, "/sys")).toMatchObject({ type: "tmpfs" });
    expect(mount(s, "/sys")?.options).toEqual(expect.arrayContaining(["ro", "noexec"]));
    expect(mount(s, "/dev/shm")?.options).toEqual(
      expect.arrayContaining(["noexec", "nosuid", "nodev", `size=${128 << 20}`]),
    );
    expect(mount(s, "/usr")).toMatchObject({
      type: "bind",
      source: "/usr",
      options: ["rbind", "ro", "nosuid", "nodev"],
    });
    expect(mount(s, "/bin"), "symlinks live in the skeleton").toBeUndefined();
    expect(mount(s, "/etc")).toMatchObject({
      source: base.etcDir,
      options: expect.arrayContaining(["ro"]),
    });
    expect(mount(s, "/opt/jdk")?.options).toContain("ro");
    expect(mount(s, "/workspace")).toMatchObject({
      source: base.workspaceDir,
      options: ["rbind", "rw", "nosuid", "nodev"],
    });
    expect(mount(s, "/tmp")).toMatchObject({
      source: base.tmpDir,
      options: ["rbind", "rw", "nosuid", "nodev"],
    });
    expect(mount(s, "/.warden/init")).toMatchObject({
      source: base.initPath,
      options: expect.arrayContaining(["ro"]),
    });
    expect(mount(s, CONTROL_SOCKET)?.source).toBe(base.controlSocket);
    // Nothing else is writable.
    const writable = s.mounts
      .filter((m) => m.type === "bind" && !m.options.includes("ro"))
      .map((m) => m.destination);
    expect(writable.sort()).toEqual([CONTROL_SOCKET, "/tmp", "/workspace"]);
    expect(mount(s, "/.warden/egress.sock")).toBeUndefined();
    // Never a sysfs: runsc's own would appear if the spec left /sys out.
    expect(s.mounts.filter((m) => m.destination === "/sys").map((m) => m.type)).toEqual(["tmpfs"]);
  });

  it("init gets the control socket, then bridge and warm as in the namespaces tier", () => {
    expect(spec().process.args).toEqual(["/.warden/init", "--socket", CONTROL_SOCKET]);
    const s = spec({
      bridge: { hostSocket: "/run/warden/boxes/b1-2", socket: "/.warden/egress.sock", port: 3128 },
      warm: ["/usr/bin/python3", "/.warden/lib/warm.py"],
    });
    expect(s.process.args).toEqual([
      "/.warden/init",
      "--socket",
      CONTROL_SOCKET,
      "--bridge",
      "/.warden/egress.sock",
      "3128",
      "--warm",
      "/usr/bin/python3",
      "/.warden/lib/warm.py",
    ]);
    expect(mount(s, "/.warden/egress.sock")?.source).toBe("/run/warden/boxes/b1-2");
  });
});

describe("gVisor helpers", () => {
  it("cgroup limits leave room for runsc's own processes", () => {
    expect(gvisorCgroupLimits(limits, { memoryOverheadMb: 32, pidsOverhead: 128 })).toEqual({
      memoryBytes: 160 << 20,
      pids: 192,
      cpuPercent: 50,
    });
  });

  it("parses runsc --version and runsc flags", () => {
    expect(parseRunscVersion("runsc version 0.0~20221219.0\nspec: 1.0.2-dev\n")).toBe(
      "0.0~20221219.0",
    );
    const flags =
      '  -platform string\n    \tspecifies which platform to use: ptrace (default), kvm. (default "ptrace")\n  -host-uds value\n  -network value\n  -root string\n  -overlay2 value\n';
    expect(parsePlatforms(flags)).toEqual(["ptrace", "kvm"]);
    expect(
      parsePlatforms("specifies which platform to use: systrap (default), ptrace, kvm."),
    ).toEqual(["systrap", "ptrace", "kvm"]);
    expect(missingFlags(flags)).toEqual([]);
    expect(missingFlags("  -root string\n")).toEqual(["-host-uds", "-network", "-overlay2"]);
  });

  it("the skeleton is named by what it holds", () => {
    const a = skeletonContent([
      { kind: "dir", path: "/usr" },
      { kind: "symlink", path: "/lib", target: "usr/lib" },
    ]);
    expect(a.dirs).toContain(".warden");
    // /home/user is the workspace, as in the namespaces tier (E2B's paths).
    expect(a.dirs).toContain("home");
    expect(a.symlinks).toEqual([
      { path: "home/user", target: "/workspace" },
      { path: "lib", target: "usr/lib" },
    ]);
    const b = skeletonContent([
      { kind: "dir", path: "/usr" },
      { kind: "symlink", path: "/lib", target: "usr/lib64" },
    ]);
    expect(skeletonDigest(a)).not.toBe(skeletonDigest(b));
  });

  it("describes the probe for the doctor", () => {
    expect(
      describeProbe({
        available: true,
        version: "v",
        platform: "ptrace",
        reason: null,
        platforms: { ptrace: "ok", kvm: "no vmx or svm in /proc/cpuinfo" },
      }),
    ).toBe("available (runsc v, platform ptrace; kvm: no vmx or svm in /proc/cpuinfo)");
    expect(
      describeProbe({
        available: false,
        version: null,
        platform: null,
        reason: "x",
        platforms: {},
      }),
    ).toBe("unavailable: x");
  });
});
