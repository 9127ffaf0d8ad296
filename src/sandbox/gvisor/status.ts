/**
 * `warden doctor`'s view of the gVisor tier without a running server: the
 * start-up probe (probe.ts: version, flags, platforms and its verdict shape)
 * with a lighter try per platform, `/bin/true` in a throw-away bundle with no
 * cgroup instead of a full box. Plus the warning for runsc builds too old.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GvisorConfig } from "../../config/gvisor-config.js";
import { probeGvisor, type GvisorProbe } from "./probe.js";
import { runsc } from "./runsc-args.js";

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

/** `/bin/true` in a throw-away bundle; null when it ran, else why not. */
async function runTrue(
  runscPath: string,
  platform: string,
  timeoutMs: number,
): Promise<string | null> {
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
    const call = { runscPath, globalArgs: [] };
    const run = await runsc(call, [...globals, "run", "--bundle", dir, id], timeoutMs);
    await runsc(call, ["--root", root, "delete", "--force", id], timeoutMs);
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
export async function quickGvisorStatus(config: GvisorConfig): Promise<GvisorProbe> {
  const found =
    config.enabled === "off" ||
    (await access(config.runscPath, constants.X_OK).then(
      () => true,
      () => false,
    ));
  if (!found)
    return {
      available: false,
      version: null,
      platform: null,
      reason: `runsc: not found at ${config.runscPath} (apt-get install runsc, or set sandbox.gvisor.runscPath)`,
      platforms: {},
    };
  // Not root: the version and the platforms on offer are still reported.
  const root = process.getuid?.() === 0;
  return probeGvisor(config, async (platform) =>
    root ? runTrue(config.runscPath, platform, config.probeTimeoutMs) : "runsc runs as root only",
  );
}
