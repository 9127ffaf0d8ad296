/**
 * Whether the gVisor tier can run on this host, in one shape that the start-up
 * probe (probe.ts) and `warden doctor` both fill, and the doctor's own quick
 * probe: `runsc --version`, `runsc flags`, /dev/kvm, then `/bin/true` in a
 * throw-away bundle per candidate platform under the probe deadline.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdir, mkdtemp, open, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GvisorConfig } from "../../config/gvisor-config.js";
import { callRunsc } from "../janitor-gvisor.js";

export interface GvisorStatus {
  available: boolean;
  /** As runsc prints it (`0.0~20221219.0`, `release-20240513.0`). */
  version?: string;
  /** The platform runs use, when available. */
  platform?: string;
  /** Why each thing that was not chosen was not (`kvm: probe timed out`, `runsc: not found`). */
  reasons: Record<string, string>;
}

export const PLATFORMS = ["kvm", "systrap", "ptrace"] as const;

/** `runsc version 0.0~20221219.0` → `0.0~20221219.0`. */
export function parseRunscVersion(text: string): string | null {
  return /runsc version (\S+)/.exec(text)?.[1] ?? null;
}

/** The build date in a version (`0.0~20221219.0`, `release-20230605.0`), or null. */
export function buildDate(version: string): string | null {
  return /(20\d{2})(\d{2})(\d{2})/.exec(version)?.slice(1).join("-") ?? null;
}

/**
 * Builds before June 2023 miss what users and Warden's tests trip over: statx
 * with AT_NO_AUTOMOUNT gives EINVAL (coreutils `ls /` and `stat` fail), there
 * is no systrap platform (ptrace is several times slower on system calls), and
 * the guest has no pids controller (a fork bomb kills the Sentry instead of
 * getting EAGAIN).
 */
export function versionWarning(version: string): string | null {
  const date = buildDate(version);
  if (date === null || date >= "2023-06-01") return null;
  return `runsc ${version} is from ${date}: coreutils ls/stat fail (statx EINVAL), no systrap platform, no pids controller inside; set sandbox.gvisor.runscPath to a current release`;
}

/** `runsc flags`: the `-platform` values this build offers, in its order. */
export function parsePlatforms(flags: string): string[] {
  const help = /-platform string\s+[^\n]*?use: ([^\n]*)/.exec(flags)?.[1] ?? "";
  return help
    .split(/\.\s|\.$/)[0]!
    .split(",")
    .map((p) => p.trim().split(/\s/)[0] ?? "")
    .filter((p) => /^[a-z]+$/.test(p));
}

/** One line: `available (runsc V, platform P; kvm: why; …)` or `unavailable: why`. */
export function describeStatus(status: GvisorStatus): string {
  const reasons = Object.entries(status.reasons).map(([what, why]) => `${what}: ${why}`);
  if (!status.available) return `unavailable: ${reasons.join("; ") || "unknown reason"}`;
  const head = `runsc ${status.version ?? "?"}, platform ${status.platform ?? "?"}`;
  return `available (${[head, ...reasons].join("; ")})`;
}

/** KVM only where /dev/kvm opens read-write and the CPU shows virtualisation. */
async function kvmUsable(): Promise<string | null> {
  const device = await open("/dev/kvm", constants.O_RDWR).catch((e: Error) => e);
  if (device instanceof Error) return "/dev/kvm cannot be opened";
  await device.close();
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  // Seen here: a nested guest with /dev/kvm but no vmx/svm, where runsc's KVM platform hangs.
  if (!/\b(vmx|svm)\b/.test(cpuinfo)) return "/dev/kvm present but the CPU shows no vmx/svm";
  return null;
}

/** `/bin/true` in a throw-away bundle; null when it ran, else why not. */
async function runTrue(runsc: string, platform: string, timeoutMs: number): Promise<string | null> {
  const dir = await mkdtemp(join(tmpdir(), "warden-gvisor-probe-"));
  const id = `warden-probe-${randomBytes(4).toString("hex")}`;
  const root = join(dir, "state");
  try {
    const rootfs = join(dir, "rootfs");
    for (const d of ["usr", "proc", "dev", "tmp"])
      await mkdir(join(rootfs, d), { recursive: true });
    for (const link of ["bin", "lib", "lib64", "sbin"])
      await symlink(`usr/${link}`, join(rootfs, link));
    await writeFile(join(dir, "config.json"), JSON.stringify(probeSpec()));
    // --ignore-cgroups: the doctor's one-shot run makes no cgroup to leave behind.
    const globals = [
      "--root",
      root,
      "--network=none",
      `--platform=${platform}`,
      "--ignore-cgroups",
    ];
    const run = await callRunsc(runsc, [...globals, "run", "--bundle", dir, id], timeoutMs);
    await callRunsc(runsc, ["--root", root, "delete", "--force", id], timeoutMs);
    if (run.timedOut) return "probe timed out";
    if (run.code !== 0) return `probe failed: ${lastLine(run.stderr) || `exit ${run.code}`}`;
    return null;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function probeSpec(): object {
  const none: string[] = [];
  return {
    ociVersion: "1.0.2",
    process: {
      user: { uid: 65534, gid: 65534 },
      args: ["/bin/true"],
      env: ["PATH=/usr/bin:/bin"],
      cwd: "/",
      capabilities: { bounding: none, effective: none, inheritable: none, permitted: none },
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/usr", type: "bind", source: "/usr", options: ["rbind", "ro"] },
    ],
    linux: { namespaces: ["pid", "network", "ipc", "uts", "mount"].map((type) => ({ type })) },
  };
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1)?.slice(0, 200) ?? "";
}

/** The doctor's probe. Needs root to run a container; it reports why not otherwise. */
export async function quickGvisorStatus(config: GvisorConfig): Promise<GvisorStatus> {
  const reasons: Record<string, string> = {};
  if (config.enabled === "off")
    return { available: false, reasons: { config: "sandbox.gvisor.enabled is off" } };
  const runsc = config.runscPath;
  const found = await access(runsc, constants.X_OK).then(
    () => true,
    () => false,
  );
  if (!found)
    return {
      available: false,
      reasons: {
        runsc: `not found at ${runsc} (apt-get install runsc, or set sandbox.gvisor.runscPath)`,
      },
    };
  const timeoutMs = config.probeTimeoutMs;
  const version = parseRunscVersion((await callRunsc(runsc, ["--version"], timeoutMs)).stdout);
  if (!version)
    return { available: false, reasons: { runsc: `${runsc} --version said no version` } };
  // Older builds print their flags on stderr, newer ones on stdout.
  const listed = await callRunsc(runsc, ["flags"], timeoutMs);
  const flags = listed.stdout + listed.stderr;
  const offered = parsePlatforms(flags);
  for (const needed of ["-host-uds", "-ignore-cgroups"])
    if (!flags.includes(needed))
      return { available: false, version, reasons: { runsc: `this build has no ${needed} flag` } };
  if (process.getuid?.() !== 0)
    return { available: false, version, reasons: { root: "runsc runs as root only" } };
  const candidates = config.platform === "auto" ? PLATFORMS : [config.platform];
  let platform: string | undefined;
  for (const p of candidates) {
    if (platform) break;
    if (!offered.includes(p)) {
      reasons[p] = "not in this build";
      continue;
    }
    const blocked = p === "kvm" ? await kvmUsable() : null;
    const why = blocked ?? (await runTrue(runsc, p, timeoutMs));
    if (why) reasons[p] = why;
    else platform = p;
  }
  return platform
    ? { available: true, version, platform, reasons }
    : { available: false, version, reasons };
}
