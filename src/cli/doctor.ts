/**
 * `warden doctor`: checks every prerequisite of isolation and every runtime,
 * prints a table with a fix for each problem, and exits non-zero on a blocker.
 */
import { execFile } from "node:child_process";
import { access, constants, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { readCgroupLayout } from "../sandbox/cgroups/index.js";
import { defaultNativeDir } from "../sandbox/host.js";
import { createContext, openHost, type GlobalOptions } from "./context.js";
import { gatherGvisorChecks } from "./doctor-gvisor.js";

const run = promisify(execFile);

type Level = "ok" | "warn" | "fail";
interface Check {
  name: string;
  level: Level;
  detail: string;
  fix?: string;
}

/** bubblewrap ≥ 0.8 is needed for --disable-userns. */
const MIN_BWRAP = [0, 8, 0];

function versionAtLeast(version: string, min: number[]): boolean {
  const parts = version.split(".").map(Number);
  for (let i = 0; i < min.length; i++) {
    const a = parts[i] ?? 0;
    const b = min[i]!;
    if (a !== b) return a > b;
  }
  return true;
}

/** Directories above the run dir must let other users pass (x bit), or bubblewrap cannot reach the workspaces. */
async function traversable(path: string): Promise<string | null> {
  for (let dir = dirname(path); dir !== "/"; dir = dirname(dir)) {
    const info = await stat(dir).catch(() => null);
    if (info && (info.mode & 0o001) === 0) return dir;
  }
  return null;
}

/**
 * Moving a process into a cgroup waits for an RCU grace period (~5-10 ms here)
 * unless the host favours dynamic cgroup changes. Boxes of the warm pool pay
 * it ahead of their requests; cold starts (a pool miss, egress, an unusual
 * runtime) pay it on the request's path. An optional extra, never required.
 */
async function cgroupJoinTip(mode: string): Promise<Check | null> {
  if (mode === "v2") {
    const mounts = await readFile("/proc/self/mounts", "utf8");
    if (/ cgroup2 \S*favordynmods/.test(mounts)) return null;
    return {
      name: "cgroup join speed",
      level: "warn",
      detail:
        "cgroup2 is mounted without favordynmods: each cold sandbox start (a warm pool miss) waits for an RCU grace period",
      fix: "mount -o remount,favordynmods /sys/fs/cgroup (Linux 6.1+)",
    };
  }
  const expedited = await readFile("/sys/kernel/rcu_expedited", "utf8").catch(() => "1");
  if (expedited.trim() !== "0") return null;
  return {
    name: "cgroup join speed",
    level: "warn",
    detail:
      "rcu_expedited=0: each cold sandbox start (a warm pool miss) waits ~5-10 ms for an RCU grace period to join its cgroups",
    fix: "echo 1 > /sys/kernel/rcu_expedited (or boot with rcupdate.rcu_expedited=1) on a host dedicated to Warden",
  };
}

export async function gatherChecks(options: GlobalOptions): Promise<Check[]> {
  const ctx = createContext(options);
  const checks: Check[] = [];
  const add = (c: Check): void => void checks.push(c);

  add(
    process.platform === "linux"
      ? { name: "platform", level: "ok", detail: `linux ${process.arch}` }
      : {
          name: "platform",
          level: "fail",
          detail: process.platform,
          fix: "Warden runs on Linux only",
        },
  );
  add(
    process.getuid?.() === 0
      ? { name: "root", level: "ok", detail: "running as root" }
      : {
          name: "root",
          level: "fail",
          detail: `uid ${process.getuid?.()}`,
          fix: "run Warden as root (it drops every sandbox to its own uid)",
        },
  );
  const bwrap = ctx.config.sandbox.bwrapPath;
  const bwrapVersion = await run(bwrap, ["--version"]).then(
    (r) => /(\d+\.\d+\.\d+)/.exec(r.stdout)?.[1] ?? "?",
    () => null,
  );
  if (!bwrapVersion)
    add({
      name: "bubblewrap",
      level: "fail",
      detail: `${bwrap} not found`,
      fix: "apt-get install bubblewrap",
    });
  else if (!versionAtLeast(bwrapVersion, MIN_BWRAP))
    add({
      name: "bubblewrap",
      level: "fail",
      detail: `${bwrapVersion} is too old`,
      fix: "install bubblewrap 0.8 or newer (Debian 12 has it)",
    });
  else add({ name: "bubblewrap", level: "ok", detail: `${bwrap} ${bwrapVersion}` });

  const maxUserNs = await readFile("/proc/sys/user/max_user_namespaces", "utf8").catch(() => "0");
  add(
    Number(maxUserNs) > 0
      ? { name: "user namespaces", level: "ok", detail: `max_user_namespaces=${maxUserNs.trim()}` }
      : {
          name: "user namespaces",
          level: "fail",
          detail: "disabled",
          fix: "sysctl -w user.max_user_namespaces=15000",
        },
  );

  const layout = readCgroupLayout();
  const controllers =
    layout.mode === "v2" ? layout.unifiedControllers : Object.keys(layout.v1Mounts);
  if (layout.mode === "none")
    add({
      name: "cgroups",
      level: "fail",
      detail: `missing ${layout.missing.join(", ")}`,
      fix: "mount the memory and pids controllers (v2 recommended)",
    });
  else {
    add({ name: "cgroups", level: "ok", detail: `${layout.mode}: ${controllers.join(" ")}` });
    const cpu =
      layout.mode === "v2"
        ? controllers.includes("cpu")
        : Boolean(layout.v1Mounts.cpu && layout.v1Mounts.cpuacct);
    if (!cpu)
      add({
        name: "cgroup cpu",
        level: "warn",
        detail: "no cpu controller: no CPU quota or CPU-time accounting",
        fix: "enable the cpu (and on v1 cpuacct) controller",
      });
    const slowJoin = await cgroupJoinTip(layout.mode);
    if (slowJoin) add(slowJoin);
    if (layout.mode !== "v2" && !layout.v1Mounts.freezer)
      add({
        name: "cgroup freezer",
        level: "warn",
        detail: "no freezer: kills race fork bombs (still bounded by pids)",
        fix: "mount the v1 freezer controller",
      });
  }

  const seccompKernel = /^Seccomp:/m.test(await readFile("/proc/self/status", "utf8"));
  add(
    seccompKernel
      ? { name: "seccomp (kernel)", level: "ok", detail: "supported" }
      : {
          name: "seccomp (kernel)",
          level: "fail",
          detail: "not supported",
          fix: "use a kernel built with CONFIG_SECCOMP_FILTER",
        },
  );
  const nativeDir = ctx.config.sandbox.nativeDir ?? defaultNativeDir();
  for (const file of ["warden-exec", "warden-init", "seccomp.bpf"]) {
    const path = join(nativeDir, file);
    const present = await access(path, constants.R_OK).then(
      () => true,
      () => false,
    );
    add(
      present
        ? { name: file, level: "ok", detail: path }
        : {
            name: file,
            level: "fail",
            detail: `missing: ${path}`,
            fix: "apt-get install gcc libseccomp-dev && npm run build:native",
          },
    );
  }
  const blocked = await traversable(ctx.config.runDir);
  add(
    blocked
      ? {
          name: "run dir",
          level: "fail",
          detail: `${blocked} is not traversable by other users`,
          fix: `chmod o+x ${blocked}, or set WARDEN_RUN_DIR elsewhere`,
        }
      : { name: "run dir", level: "ok", detail: ctx.config.runDir },
  );

  if (!checks.some((c) => c.level === "fail")) {
    const failure = await openHost(ctx).then(
      (host) => host.selfTest().finally(() => host.close()),
      (error: Error) => error.message,
    );
    add(
      failure === null
        ? { name: "isolation self-test", level: "ok", detail: "a real sandbox ran as its own user" }
        : {
            name: "isolation self-test",
            level: "fail",
            detail: failure,
            fix: "see the lines above; check dmesg and AppArmor/SELinux policy for bwrap",
          },
    );
  } else {
    add({
      name: "isolation self-test",
      level: "fail",
      detail: "skipped: fix the blockers above first",
    });
  }

  if (layout.mode !== "none")
    for (const check of await gatherGvisorChecks(ctx.config.sandbox.gvisor, layout.mode))
      add(check);

  for (const runtime of await ctx.registry.list()) {
    add(
      runtime.available
        ? {
            name: `runtime ${runtime.language}`,
            level: "ok",
            detail: `${runtime.version ?? "?"} (${Object.values(runtime.tools)[0]})`,
          }
        : {
            name: `runtime ${runtime.language}`,
            level: "warn",
            detail: `unavailable: ${runtime.missing.join("; ")}`,
            fix: `install it system-wide (e.g. apt-get) to offer ${runtime.language}`,
          },
    );
  }
  return checks;
}

export function formatChecks(checks: readonly Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const mark: Record<Level, string> = { ok: "ok  ", warn: "WARN", fail: "FAIL" };
  const lines = checks.map((c) => {
    const fix = c.fix && c.level !== "ok" ? `\n${" ".repeat(width + 9)}fix: ${c.fix}` : "";
    return `  ${c.name.padEnd(width)}  ${mark[c.level]}  ${c.detail}${fix}`;
  });
  const blockers = checks.filter((c) => c.level === "fail").length;
  lines.push(
    "",
    blockers
      ? `${blockers} blocker(s): Warden will refuse to run code.`
      : "Isolation is available.",
  );
  return lines.join("\n");
}

export async function doctorCommand(options: GlobalOptions & { json?: boolean }): Promise<number> {
  const checks = await gatherChecks(options);
  if (options.json) process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`);
  else process.stdout.write(`${formatChecks(checks)}\n`);
  return checks.some((c) => c.level === "fail") ? 1 : 0;
}
