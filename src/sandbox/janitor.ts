/**
 * Start-up janitor: removes what a crashed Warden left behind — cgroups,
 * workspace mounts and directories, a box's side files (a session's preview
 * relay socket, a gVisor run's control socket), uid leases, stray processes
 * and the gVisor tier's runsc state, bundles and foreign cgroups. Only
 * leftovers whose owner (the Warden process named in the box id) is dead are
 * touched, so several Warden processes can share one host.
 */
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { spawn } from "node:child_process";
import type { Logger } from "../audit/logger.js";
import { parseMountInfo } from "./cgroups/detect.js";
import type { CgroupDriver } from "./cgroups/index.js";
import { sweepGvisor, type GvisorSweepReport } from "./janitor-gvisor.js";
import type { RunDirLayout } from "./host-layout.js";
import { isOwnerAlive, parseBoxName, parseOwnerTag } from "./owner.js";
import type { UidPool } from "./uid-pool.js";

export interface JanitorReport {
  cgroups: number;
  mounts: number;
  workspaces: number;
  /** Side entries of boxes: `<boxId>-preview` (a relay socket), gVisor's `-ctl-<n>/` and `-net-<n>/` dirs. */
  sideFiles: number;
  leases: number;
  processes: number;
  gvisor: GvisorSweepReport;
}

export interface JanitorOptions {
  runDir: RunDirLayout;
  cgroups: CgroupDriver;
  uids: UidPool;
  logger: Logger;
  /**
   * runsc, to `delete --force` a dead owner's gVisor containers; null or
   * absent when the tier is off (its files and cgroups are swept anyway).
   */
  runscPath?: string | null;
}

/** A box (or one of its cgroups) whose Warden is gone. Names Warden did not make are left alone. */
function isOrphan(name: string): boolean {
  const parsed = parseBoxName(name);
  return parsed !== null && !isOwnerAlive(parsed.owner);
}

/**
 * A box's side entry, `<boxId>-<name>` next to its directory (Box.sidePath),
 * or `<boxId>-<name>-<run>`: a file (a session's preview relay socket) or a
 * directory (a gVisor run's control socket dir `-ctl-<n>/`, its egress socket
 * dir `-net-<n>/`). A Warden killed with SIGKILL never runs the close() that
 * removes it.
 */
const SIDE_FILE = /^(b\d+-\d+-[a-z0-9]+)-([a-z]+(?:-\d+)?)$/;

function isOrphanSideFile(name: string): boolean {
  const boxId = SIDE_FILE.exec(name)?.[1];
  return boxId !== undefined && isOrphan(boxId);
}

function isDeadOwner(tag: string): boolean {
  const owner = parseOwnerTag(tag);
  return owner !== null && !isOwnerAlive(owner);
}

/** Real uid of every process, from /proc/PID/status. */
async function processesByUid(): Promise<Map<number, number[]>> {
  const byUid = new Map<number, number[]>();
  for (const entry of await readdir("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
    if (!Number.isInteger(uid)) continue;
    byUid.set(uid, [...(byUid.get(uid) ?? []), pid]);
  }
  return byUid;
}

/** Half-built trees of dead owners go; so do outdated trees no live owner still uses. */
async function sweepSharedTrees(root: string, current: string): Promise<void> {
  const entries = await readdir(root).catch(() => [] as string[]);
  for (const name of entries) {
    const path = join(root, name);
    if (name.endsWith("-tmp")) {
      if (isDeadOwner(name.slice(0, -"-tmp".length)))
        await rm(path, { recursive: true, force: true });
      continue;
    }
    if (!name.endsWith(".users")) continue;
    const users = await readdir(path).catch(() => [] as string[]);
    for (const user of users) if (isDeadOwner(user)) await rm(join(path, user), { force: true });
    const tree = path.slice(0, -".users".length);
    if (tree === current || users.some((u) => !isDeadOwner(u))) continue;
    await rm(tree, { recursive: true, force: true });
    await rm(path, { recursive: true, force: true });
  }
}

export async function runJanitor(o: JanitorOptions): Promise<JanitorReport> {
  const report: JanitorReport = {
    cgroups: 0,
    mounts: 0,
    workspaces: 0,
    sideFiles: 0,
    leases: 0,
    processes: 0,
    gvisor: { containers: 0, stateFiles: 0, bundles: 0, foreignCgroups: 0 },
  };
  for (const name of await o.cgroups.list()) {
    if (!isOrphan(name)) continue;
    await o.cgroups.open(name).destroy();
    report.cgroups++;
  }
  // After Warden's own cgroups are emptied, so runsc only has state to drop.
  report.gvisor = await sweepGvisor({
    runDir: o.runDir.root,
    runscPath: o.runscPath ?? null,
    cgroups: o.cgroups,
    isOrphan,
  });
  for (const name of await readdir(o.runDir.boxes).catch(() => [] as string[])) {
    if (isOrphanSideFile(name)) {
      // Recursive: gVisor's side entries are directories, and rm without it
      // throws EISDIR, which aborted the whole start-up sweep.
      await rm(join(o.runDir.boxes, name), { recursive: true, force: true });
      report.sideFiles++;
      continue;
    }
    if (!isOrphan(name)) continue;
    const dir = join(o.runDir.boxes, name);
    if (await isMountPoint(dir)) {
      await unmount(dir);
      report.mounts++;
    }
    await rm(dir, { recursive: true, force: true });
    report.workspaces++;
  }
  await sweepSharedTrees(o.runDir.etcRoot, o.runDir.etc);
  await sweepSharedTrees(o.runDir.libRoot, o.runDir.lib);
  // A process under a sandbox uid whose lease is gone or orphaned escaped its
  // cgroup somehow (it cannot, by design): kill it rather than trust that.
  // Processes first, then leases: a box takes its lease before it starts a
  // process, so every process seen here has its lease by the time the leases
  // are read. The other order killed a live box of another Warden that leased
  // and started between the two reads.
  const byUid = await processesByUid();
  const leases = await o.uids.leases();
  for (const [uid, pids] of byUid) {
    if (!o.uids.contains(uid)) continue;
    const lease = leases.get(uid);
    if (lease !== undefined && !isOrphan(lease)) continue;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
        report.processes++;
      } catch {
        // gone already
      }
    }
  }
  for (const [uid, boxId] of leases) {
    if (!isOrphan(boxId)) continue;
    await o.uids.release(uid);
    report.leases++;
  }
  const total =
    report.cgroups +
    report.mounts +
    report.workspaces +
    report.sideFiles +
    report.leases +
    report.processes +
    report.gvisor.containers +
    report.gvisor.stateFiles +
    report.gvisor.bundles +
    report.gvisor.foreignCgroups;
  if (total > 0)
    o.logger.info({ cleaned: report }, "janitor removed leftovers of a crashed Warden");
  return report;
}

/** Boxes of older Warden versions mounted their workspace in the host's namespace. */
async function isMountPoint(dir: string): Promise<boolean> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  return parseMountInfo(info).some((m) => m.mountPoint === dir);
}

/** Lazy unmount with util-linux umount(8); Node has no umount of its own. */
function unmount(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("umount", ["--lazy", dir], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`umount ${dir}: ${err.trim() || `exit ${code}`}`)),
    );
  });
}
