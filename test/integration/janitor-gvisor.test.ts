/**
 * A crashed Warden's gVisor runs, left as they would be: one container still
 * running (its runsc reparented to init), one whose `runsc run` was SIGKILLed
 * mid-run (what PDEATHSIG does when Warden dies), each with Warden's cgroup,
 * the cgroups runsc made in the other v1 hierarchies, runsc's state and lock
 * files, a bundle and a control socket. The janitor leaves nothing: no runsc
 * process, an empty `runsc list`, no state, no bundle, no cgroup in any
 * hierarchy. A live owner's files beside them stay.
 */
import { spawn, type ChildProcess } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  rmdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import {
  createCgroupDriver,
  gvisorLimits,
  readCgroupLayout,
} from "../../src/sandbox/cgroups/index.js";
import { runJanitor } from "../../src/sandbox/janitor.js";
import { runsc } from "../../src/sandbox/gvisor/runsc-args.js";
import { ownerTag } from "../../src/sandbox/owner.js";
import { UidPool } from "../../src/sandbox/uid-pool.js";

const RUNSC = "/usr/bin/runsc";
const RUN_DIR = "/run/warden-gjanitor-test";
const PARENT = "warden-gjanitor-test";
const skipReason =
  process.getuid?.() !== 0
    ? "needs root (runsc and cgroups)"
    : !existsSync(RUNSC)
      ? `runsc is absent (${RUNSC}): apt-get install runsc`
      : readCgroupLayout().mode === "none"
        ? "no usable cgroup hierarchy"
        : null;

const stateDir = join(RUN_DIR, "runsc");
// This process's pid with start ticks it never had: an owner that is dead.
const dead = `b${process.pid}-1`;

/** An OCI bundle for `argv`, as the gVisor box writes one (trimmed to what the test needs). */
function writeBundle(id: string, argv: string[]): string {
  const dir = join(RUN_DIR, "gvisor", id);
  const rootfs = join(dir, "rootfs");
  for (const d of ["usr", "proc", "dev", "tmp", "etc"])
    mkdirSync(join(rootfs, d), { recursive: true });
  for (const [link, target] of [
    ["bin", "usr/bin"],
    ["lib", "usr/lib"],
    ["lib64", "usr/lib64"],
  ] as const)
    if (!existsSync(join(rootfs, link))) symlinkSync(target, join(rootfs, link));
  const spec = {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 1000, gid: 1000, additionalGids: [] },
      args: argv,
      env: ["PATH=/usr/bin:/bin"],
      cwd: "/",
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: "warden",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/usr",
        type: "bind",
        source: "/usr",
        options: ["rbind", "ro", "nosuid", "nodev"],
      },
    ],
    linux: {
      namespaces: ["pid", "network", "ipc", "uts", "mount"].map((type) => ({ type })),
      cgroupsPath: `/${PARENT}/${id}`,
    },
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(spec));
  return dir;
}

const children: ChildProcess[] = [];

/** `runsc run` detached from this process (its Warden is "gone"), until the container runs. */
async function startContainer(id: string): Promise<ChildProcess> {
  const bundle = writeBundle(id, ["/bin/sleep", "300"]);
  const child = spawn(
    RUNSC,
    ["--root", stateDir, "--network=none", "run", "--bundle", bundle, id],
    {
      env: {},
      stdio: "ignore",
      detached: true,
    },
  );
  children.push(child);
  for (let i = 0; i < 300; i++) {
    const list = await runsc(
      { runscPath: RUNSC, globalArgs: [] },
      ["--root", stateDir, "list", "-format", "json"],
      10_000,
    );
    if (list.stdout.includes(`"id":"${id}","status":"running"`)) return child;
    await sleep(100);
  }
  throw new Error(`container ${id} did not start`);
}

/** Processes whose command line names `id` (runsc run, its gofer and sandbox). */
function processesNaming(id: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (cmdline.split("\0").some((arg) => arg.includes(id))) found.push(pid);
  }
  return found;
}

/** The run's cgroup directory in every mounted v1 hierarchy (and the unified one). */
function cgroupsNamed(id: string): string[] {
  const layout = readCgroupLayout();
  const mounts = [
    ...(layout.v1Hierarchies ?? []),
    ...(layout.unifiedMount ? [layout.unifiedMount] : []),
  ];
  return mounts.map((m) => join(m, PARENT, id)).filter((d) => existsSync(d));
}

afterAll(async () => {
  if (skipReason !== null) return;
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  const cgroups = createCgroupDriver(PARENT);
  await cgroups.sweepForeign(`b${process.pid}`).catch(() => undefined);
  rmSync(RUN_DIR, { recursive: true, force: true });
  // The test's own cgroup parent, in every hierarchy runsc or the driver made it.
  for (const mount of readCgroupLayout().v1Hierarchies ?? []) {
    try {
      rmdirSync(join(mount, PARENT));
    } catch {
      // not made there, or still in use
    }
  }
});

describe("janitor, gVisor tier (real runsc)", () => {
  const title = "leaves nothing of a dead owner's gVisor runs and keeps a live owner's";
  it.skipIf(skipReason !== null)(
    skipReason ? `${title} (skipped: ${skipReason})` : title,
    async () => {
      rmSync(RUN_DIR, { recursive: true, force: true });
      mkdirSync(join(RUN_DIR, "boxes"), { recursive: true, mode: 0o711 });
      mkdirSync(stateDir, { recursive: true, mode: 0o711 });
      const cgroups = createCgroupDriver(PARENT);
      const limits = gvisorLimits(
        { memoryBytes: 256 << 20, pids: 64, cpuPercent: 100 },
        { memoryOverheadMb: 32, pidsOverhead: 128 },
      );
      const running = `${dead}-a1b2c3-1`;
      const killed = `${dead}-d4e5f6-2`;
      for (const id of [running, killed]) {
        // Warden makes the box's cgroup first; runsc joins it and makes the rest.
        await cgroups.create(id, limits);
        // The control socket as GvisorBox leaves it: `<boxId>-ctl-<n>/sock`.
        const ctl = join(RUN_DIR, "boxes", `${id.replace(/-\d+$/, "")}-ctl-${id.slice(-1)}`);
        mkdirSync(ctl, { mode: 0o700 });
        writeFileSync(join(ctl, "sock"), "");
      }
      await startContainer(running);
      const victim = await startContainer(killed);
      victim.kill("SIGKILL");
      await new Promise((resolve) => victim.once("exit", resolve));
      for (const id of [running, killed])
        expect(
          cgroupsNamed(id).length,
          `${id}: runsc made cgroups beyond Warden's`,
        ).toBeGreaterThan(5);
      expect(processesNaming(running).length).toBeGreaterThan(0);
      expect(readdirSync(stateDir).some((f) => f.startsWith(killed))).toBe(true);
      // A live owner's run: its state, bundle, socket and a cgroup runsc made.
      const live = `${ownerTag()}-a0a0a0-1`;
      writeFileSync(join(stateDir, `${live}_sandbox:${live}.lock`), "");
      mkdirSync(join(RUN_DIR, "gvisor", live), { recursive: true });
      writeFileSync(join(RUN_DIR, "boxes", `${ownerTag()}-a0a0a0-ctl-1`), "");
      const blkio = readCgroupLayout().v1Hierarchies?.find((m) => m.endsWith("blkio"));
      if (blkio) mkdirSync(join(blkio, PARENT, live), { recursive: true });

      const uids = new UidPool(join(RUN_DIR, "uids"), 770_000, 10);
      await uids.init();
      const report = await runJanitor({
        runDir: {
          root: RUN_DIR,
          boxes: join(RUN_DIR, "boxes"),
          uids: join(RUN_DIR, "uids"),
          etcRoot: join(RUN_DIR, "etc"),
          etc: "",
          libRoot: join(RUN_DIR, "lib"),
          lib: "",
        },
        cgroups,
        uids,
        logger: silentLogger,
        runscPath: RUNSC,
      });

      expect(report.cgroups).toBe(2);
      expect(report.sideFiles).toBe(2);
      expect(report.gvisor.bundles).toBe(2);
      const left = (id: string): object => ({
        processes: processesNaming(id),
        cgroups: cgroupsNamed(id),
        bundle: existsSync(join(RUN_DIR, "gvisor", id)),
        state: readdirSync(stateDir).filter((f) => f.startsWith(id)),
      });
      const nothing = { processes: [], cgroups: [], bundle: false, state: [] };
      expect({ running: left(running), killed: left(killed) }).toEqual({
        running: nothing,
        killed: nothing,
      });
      const list = await runsc(
        { runscPath: RUNSC, globalArgs: [] },
        ["--root", stateDir, "list", "-quiet"],
        10_000,
      );
      expect(list.stdout.trim()).toBe("");
      expect(readdirSync(stateDir)).toEqual([`${live}_sandbox:${live}.lock`]);
      expect(readdirSync(join(RUN_DIR, "gvisor"))).toEqual([live]);
      expect(readdirSync(join(RUN_DIR, "boxes"))).toEqual([`${ownerTag()}-a0a0a0-ctl-1`]);
      if (blkio) {
        expect(existsSync(join(blkio, PARENT, live))).toBe(true);
        rmSync(join(blkio, PARENT, live), { recursive: true });
      }
    },
  );
});
