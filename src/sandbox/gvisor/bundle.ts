/**
 * The OCI bundle runsc runs (docs/isolation.md): a pure builder of its
 * config.json, unit-tested like bwrap-args.ts, and the writer that puts it in
 * a root-only directory. Everything the sandbox sees is named here: a
 * read-only skeleton root, read-only binds of the system and of Warden's
 * files, and the box's host tmpfs as /workspace and /tmp.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { INIT_PATH, SANDBOX_HOSTNAME, SANDBOX_UID, WORKSPACE } from "../bwrap-args.js";
import type { SystemEntry } from "../bwrap-args.js";
import type { ReadOnlyMount } from "../types.js";

/** Where init finds the host end of its control channel inside the container. */
export const CONTROL_SOCKET = "/.warden/ctl.sock";

export interface OciSpecOptions {
  /** The shared skeleton (rootfs.ts): empty mount points and the merged-/usr symlinks. */
  rootfs: string;
  /** /usr, /bin... as found on the host; directories are bound, symlinks live in the skeleton. */
  system: readonly SystemEntry[];
  etcDir: string;
  initPath: string;
  /** The box's host tmpfs directories (reached in the holder's mount namespace). */
  workspaceDir: string;
  tmpDir: string;
  /** Host path of the control socket (control.ts). */
  controlSocket: string;
  /** Runtime and environment binds, read-only. */
  mounts: readonly ReadOnlyMount[];
  /** With egress: the proxy's socket is bound at `socket` and init bridges `port` to it. */
  bridge?: { hostSocket: string; socket: string; port: number } | undefined;
  /** Environment of init (and of a warm stub). */
  env: Readonly<Record<string, string>>;
  /** rlimitsFor(): name (core, fsize...) → value, soft = hard. */
  rlimits: Readonly<Record<string, number>>;
  shmBytes: number;
  /** `/<cgroupParent>/<boxId>-<n>`: the cgroup Warden made first; runsc joins it as it is. */
  cgroupsPath: string;
  /** Written as documentation: runsc leaves a pre-created cgroup's limits alone. */
  resources: { memoryBytes: number; pids: number; cpuQuotaUs: number; cpuPeriodUs: number };
  warm?: readonly string[] | undefined;
}

/** The read-only bind options: nothing set-uid, no device nodes. */
const RO = ["rbind", "ro", "nosuid", "nodev"];
const RW = ["rbind", "rw", "nosuid", "nodev"];

/** /proc entries that say too much about the host or can poke it; as Docker masks them. */
export const MASKED_PATHS = [
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
];
export const READONLY_PATHS = [
  "/proc/asound",
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

function bind(source: string, destination: string, options = RO): OciMount {
  return { destination, type: "bind", source, options };
}

/** init's argv: the control socket in place of bubblewrap's fd pair, then bridge and warm as there. */
export function initArgs(o: Pick<OciSpecOptions, "bridge" | "warm">): string[] {
  return [
    INIT_PATH,
    "--socket",
    CONTROL_SOCKET,
    ...(o.bridge ? ["--bridge", o.bridge.socket, String(o.bridge.port)] : []),
    ...(o.warm ? ["--warm", ...o.warm] : []),
  ];
}

export function ociMounts(o: OciSpecOptions): OciMount[] {
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    // Read-only: runsc makes its device nodes (null, zero, random, tty...) in
    // it first, and nothing else may be written there (a tmpfs would take
    // writes up to the memory limit, unaccounted as disk).
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "noexec", "strictatime", "mode=755", "size=64k", "ro"],
    },
    // runsc mounts its own kernel's sysfs at /sys unless the spec puts
    // something there (maskedPaths does not hide it in this build; measured).
    // Not the host's, but DESIGN-18 §3 wants no /sys, as in the namespaces
    // tier: an empty read-only tmpfs takes its place.
    {
      destination: "/sys",
      type: "tmpfs",
      source: "tmpfs",
      options: ["ro", "nosuid", "noexec", "nodev", "mode=555", "size=4k"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${o.shmBytes}`],
    },
    ...o.system.filter((e) => e.kind === "dir").map((e) => bind(e.path, e.path)),
    bind(o.etcDir, "/etc"),
    ...o.mounts.map((m) => bind(m.source, m.target)),
    // One host tmpfs behind both, so they share the box's byte and inode quota.
    bind(o.workspaceDir, WORKSPACE, RW),
    bind(o.tmpDir, "/tmp", RW),
    bind(o.initPath, INIT_PATH, ["bind", "ro", "nosuid", "nodev"]),
    // Reachable only because of --host-uds=open; init connects once, before any program.
    bind(o.controlSocket, CONTROL_SOCKET, ["bind", "rw", "nosuid", "nodev"]),
    ...(o.bridge
      ? [bind(o.bridge.hostSocket, o.bridge.socket, ["bind", "rw", "nosuid", "nodev"])]
      : []),
  ];
}

export function ociRlimits(
  rlimits: Readonly<Record<string, number>>,
): { type: string; hard: number; soft: number }[] {
  return Object.entries(rlimits).map(([name, value]) => ({
    type: `RLIMIT_${name.toUpperCase()}`,
    hard: value,
    soft: value,
  }));
}

export function buildOciSpec(o: OciSpecOptions): Record<string, unknown> {
  return {
    ociVersion: "1.0.2",
    root: { path: o.rootfs, readonly: true },
    hostname: SANDBOX_HOSTNAME,
    process: {
      terminal: false,
      user: { uid: SANDBOX_UID, gid: SANDBOX_UID, additionalGids: [] },
      args: initArgs(o),
      env: Object.entries(o.env).map(([k, v]) => `${k}=${v}`),
      cwd: WORKSPACE,
      // Nothing: no capability in any set, and no way to gain one (set-uid files).
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      noNewPrivileges: true,
      rlimits: ociRlimits(o.rlimits),
    },
    mounts: ociMounts(o),
    linux: {
      // No user namespace: runsc makes its own around the Sentry.
      namespaces: ["pid", "network", "ipc", "uts", "mount"].map((type) => ({ type })),
      cgroupsPath: o.cgroupsPath,
      resources: {
        memory: { limit: o.resources.memoryBytes, swap: o.resources.memoryBytes },
        pids: { limit: o.resources.pids },
        cpu: { quota: o.resources.cpuQuotaUs, period: o.resources.cpuPeriodUs },
      },
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  };
}

/**
 * Writes config.json into `<gvisorDir>/<name>/`, a fresh root-only directory
 * (the spec names host paths a sandbox user must not learn). Returns the bundle dir.
 */
export async function writeBundle(
  gvisorDir: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<string> {
  const dir = join(gvisorDir, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o700 });
  await writeFile(join(dir, "config.json"), JSON.stringify(spec), { mode: 0o600 });
  return dir;
}
