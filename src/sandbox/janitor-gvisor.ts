/**
 * The janitor's share of the gVisor tier: what a crashed Warden's gVisor boxes
 * leave besides today's cgroups and workspaces. runsc keeps per-container state
 * and lock files under its `--root` (a `run` killed mid-way leaves them, e.g.
 * `<id>_sandbox:<id>.lock`), each run has a bundle directory, and on cgroup v1
 * runsc makes the box's cgroup in hierarchies Warden does not drive. Only
 * names whose owner (the Warden process named in them) is dead are touched.
 */
import { access, constants, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { CgroupDriver } from "./cgroups/index.js";
import { runsc } from "./gvisor/runsc-args.js";

/** `<runDir>/runsc`: runsc's `--root`, its state and lock files. */
export const RUNSC_STATE_DIR = "runsc";
/** `<runDir>/gvisor/<boxId>-<n>/`: one OCI bundle per run. */
export const BUNDLES_DIR = "gvisor";

/** How long one runsc call of the janitor may take before it is killed. */
export const RUNSC_CALL_TIMEOUT_MS = 10_000;

/** A container id, bundle or state file named after a run (`<boxId>-<n>`). */
const RUN_PREFIX = /^(b\d+-\d+-[a-z0-9]+(?:-\d+)?)(?:$|[_.])/;

export interface GvisorSweepReport {
  /** Containers `runsc delete --force` removed. */
  containers: number;
  /** State and lock files left under runsc's root after that. */
  stateFiles: number;
  bundles: number;
  /** Cgroup directories of dead owners in hierarchies Warden does not drive. */
  foreignCgroups: number;
}

export interface GvisorSweepOptions {
  /** Warden's run directory (`runDir.root`). */
  runDir: string;
  /** runsc to ask, or null when the tier is off (files and cgroups are swept anyway). */
  runscPath: string | null;
  cgroups: CgroupDriver;
  /** Whether a name (box id, run, container id) belongs to a dead owner. */
  isOrphan: (name: string) => boolean;
  timeoutMs?: number;
}

/** The run named at the start of `name` (`b1-2-ab-3_sandbox:b1-2-ab-3.lock` → `b1-2-ab-3`). */
export function runOf(name: string): string | null {
  return RUN_PREFIX.exec(name)?.[1] ?? null;
}

async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}

export async function sweepGvisor(o: GvisorSweepOptions): Promise<GvisorSweepReport> {
  const report: GvisorSweepReport = { containers: 0, stateFiles: 0, bundles: 0, foreignCgroups: 0 };
  const stateDir = join(o.runDir, RUNSC_STATE_DIR);
  const timeoutMs = o.timeoutMs ?? RUNSC_CALL_TIMEOUT_MS;
  const orphanRun = (name: string): string | null => {
    const run = runOf(name);
    return run !== null && o.isOrphan(run) ? run : null;
  };

  // 1. runsc removes what it knows of: the sandbox if it still runs, its
  // state, the cgroups it made. Asked only when its root holds a dead owner's
  // files, so a host that never ran the tier never spawns runsc here.
  const ids = new Set<string>();
  for (const name of await entries(stateDir)) {
    const run = orphanRun(name);
    if (run) ids.add(run);
  }
  const runscPath = o.runscPath;
  if (ids.size > 0 && runscPath && (await executable(runscPath))) {
    const listed = await runsc(
      { runscPath, globalArgs: [] },
      ["--root", stateDir, "list", "-quiet"],
      timeoutMs,
    );
    if (listed.code === 0)
      for (const line of listed.stdout.split("\n")) {
        const run = orphanRun(line.trim());
        if (run && run === line.trim()) ids.add(run);
      }
    for (const id of ids) {
      // The id comes from a name that matched RUN_PREFIX: never a flag.
      const deleted = await runsc(
        { runscPath, globalArgs: [] },
        ["--root", stateDir, "delete", "--force", id],
        timeoutMs,
      );
      if (deleted.code === 0) report.containers++;
    }
  }
  // 2. What runsc did not remove (a lock of a run killed mid-way, or runsc gone).
  for (const name of await entries(stateDir)) {
    if (!orphanRun(name)) continue;
    await rm(join(stateDir, name), { recursive: true, force: true });
    report.stateFiles++;
  }
  const bundles = join(o.runDir, BUNDLES_DIR);
  for (const name of await entries(bundles)) {
    if (!orphanRun(name) || runOf(name) !== name) continue;
    await rm(join(bundles, name), { recursive: true, force: true });
    report.bundles++;
  }
  // 3. The box's cgroup name in every v1 hierarchy (blkio, cpuset, devices, systemd...).
  report.foreignCgroups = await o.cgroups.sweepForeign(o.isOrphan);
  return report;
}

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}
