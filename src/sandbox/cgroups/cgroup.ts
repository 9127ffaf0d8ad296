import { readFileSync, writeFileSync } from "node:fs";
import { rmdir } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

/*
 * Control files are read and written synchronously: on cgroupfs each call is
 * a few microseconds of kernel work, while fs/promises costs an open, a write
 * and a close on the thread pool plus their callbacks. mkdir and rmdir stay
 * asynchronous: they take the kernel's cgroup_mutex, which another sandbox's
 * first write to cgroup.procs can hold for an RCU grace period, and the event
 * loop must not wait on that. Measured on a v1 host, a sandbox's cgroup life
 * (mkdir, limits, accounting, rmdir) costs 0.6 ms of Node CPU this way
 * against 2.4-3.1 ms all through fs/promises.
 */

/** Limits written into a sandbox's cgroup. */
export interface CgroupLimits {
  memoryBytes: number;
  pids: number;
  /** Share of the whole host's CPU capacity, in percent. */
  cpuPercent: number;
}

/** Read from the kernel after (or during) a run. */
export interface CgroupAccounting {
  cpuTimeMs: number;
  /** 0 where the kernel keeps no peak (cgroup v2 before Linux 5.19). */
  peakMemoryBytes: number;
  oomKills: number;
  /**
   * Forks the kernel refused at pids.max (`max` in pids.events; 0 where the
   * kernel does not count). In the gVisor tier that refusal kills the whole
   * Sentry, so this is how a run tells a fork bomb from a crash.
   */
  pidsMaxEvents: number;
}

/** One sandbox's cgroup, on whichever hierarchy the host uses. */
export interface Cgroup {
  readonly name: string;
  /** Files a process writes its pid into to join (one per hierarchy). */
  readonly procsFiles: readonly string[];
  pids(): Promise<number[]>;
  accounting(): Promise<CgroupAccounting>;
  /** Memory in use now (bytes) and CPU used so far, for live monitoring. */
  usage(): Promise<{ memoryBytes: number; cpuTimeMs: number }>;
  /** Sends `signal` to every member except `except`; returns how many got it. */
  signal(signal: NodeJS.Signals, except?: ReadonlySet<number>): Promise<number>;
  /** SIGKILLs every member, racing forks, until the cgroup is empty. */
  killAll(): Promise<void>;
  /** Changes the limits of a live cgroup (a pooled sandbox taken by a request). */
  setLimits(limits: CgroupLimits): Promise<void>;
  /** Empties and removes the cgroup. Safe to call twice. */
  destroy(): Promise<void>;
  /**
   * Stops every member (cgroup freezer) and resolves once the kernel reports
   * the whole cgroup frozen; rejects if it has not within `timeoutMs` (it is
   * thawed again then). Memory stays as it is.
   */
  freeze(timeoutMs?: number): Promise<void>;
  /** Lets a frozen cgroup run again. Safe on one that is not frozen. */
  thaw(): Promise<void>;
}

export interface CgroupDriver {
  readonly version: "v1" | "v2";
  /** Creates the cgroup `name` under Warden's parent with `limits` applied. */
  create(name: string, limits: CgroupLimits): Promise<Cgroup>;
  /** An existing cgroup by name, for the janitor. */
  open(name: string): Cgroup;
  /** Names of the cgroups under Warden's parent. */
  list(): Promise<string[]>;
  /**
   * Memory every sandbox under Warden's parent uses now (bytes), from one read
   * of the parent's own counters (the kernel sums the children): the working
   * set, i.e. without inactive file cache the kernel reclaims first (cgroup v1
   * reparents a removed child's cache to the parent, so raw usage only grows).
   */
  usageBytes(): Promise<number>;
  /**
   * Kills and removes the selected cgroups (a name, a dash-ended prefix, or a
   * predicate) under Warden's parent in every mounted hierarchy, those Warden
   * does not drive included; returns how many directories went. v1: runsc
   * makes a gVisor box's cgroup in each hierarchy it finds and a killed runsc
   * leaves them. v2: runsc joins the one unified cgroup Warden made, so 0.
   */
  sweepForeign(select: CgroupSelector): Promise<number>;
}

/**
 * Which names a sweep takes: a string is a name or a prefix ending at a dash
 * (`b1-2` takes `b1-2-ab12-3`, `b1-2-ab12-3` takes only itself, never
 * `b1-2-ab12-30`); a function decides by itself.
 */
export type CgroupSelector = string | ((name: string) => boolean);

export function selects(select: CgroupSelector, name: string): boolean {
  if (typeof select === "function") return select(name);
  return name === select || name.startsWith(`${select}-`);
}

export const CPU_PERIOD_US = 100_000;

/** cpuPercent of the whole host → quota per period, at least 1 ms. */
export function cpuQuotaUs(cpuPercent: number, cpuCount: number): number {
  return Math.max(1000, Math.round((cpuPercent / 100) * cpuCount * CPU_PERIOD_US));
}

export function readNumber(file: string): number {
  return Number(readFileSync(file, "utf8").trim());
}

/** A number from a control file, or `fallback` when the kernel does not offer it. */
export function readNumberOr(file: string, fallback: number): number {
  try {
    return readNumber(file);
  } catch {
    return fallback;
  }
}

/**
 * Reads `key value` lines (memory.events, cpu.stat, memory.oom_control); an
 * empty record when the kernel does not offer the file.
 */
export function readKeyed(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out[key] = Number(value);
  }
  return out;
}

export function readPids(procsFile: string): number[] {
  try {
    const text = readFileSync(procsFile, "utf8");
    return text
      .split("\n")
      .filter(Boolean)
      .map((p) => Number(p));
  } catch (error) {
    if (isErrno(error, "ENOENT")) return [];
    throw error;
  }
}

export function signalAll(
  pids: readonly number[],
  signal: NodeJS.Signals,
  except?: ReadonlySet<number>,
): number {
  let sent = 0;
  for (const pid of pids) {
    if (except?.has(pid)) continue;
    try {
      process.kill(pid, signal);
      sent++;
    } catch {
      // already gone
    }
  }
  return sent;
}

/** Writes a control file, ignoring one the kernel does not offer. */
export function writeOptional(file: string, value: string): boolean {
  try {
    writeFileSync(file, value);
    return true;
  } catch (error) {
    if (isErrno(error, "ENOENT")) return false;
    throw error;
  }
}

/** rmdir that waits out the short EBUSY window after the last member exits. */
export async function removeDir(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      if (isErrno(error, "ENOENT")) return;
      if (!isErrno(error, "EBUSY") || attempt >= 50) throw error;
      await sleep(10);
    }
  }
}

/** Kills members until none is left; a fork bomb refills, so loop (bounded by pids.max). */
export async function killUntilEmpty(
  list: () => Promise<number[]>,
  beforeRound?: () => Promise<void>,
  afterRound?: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    await beforeRound?.();
    const pids = await list();
    signalAll(pids, "SIGKILL");
    await afterRound?.();
    if (pids.length === 0) {
      if ((await list()).length === 0) return;
    }
    if (Date.now() > deadline) throw new Error("cgroup still has processes after 10 s of SIGKILL");
    await sleep(pids.length === 0 ? 5 : 1);
  }
}

/** How long a freeze may take before it is given up (a task in uninterruptible sleep). */
export const FREEZE_TIMEOUT_MS = 10_000;

/**
 * Asks the kernel to freeze, then polls `isFrozen` until it says so (the
 * freeze is asynchronous on both versions); past `timeoutMs`, `undo` and fail.
 */
export async function freezeAndWait(
  start: () => void,
  isFrozen: () => boolean,
  undo: () => void,
  timeoutMs: number,
): Promise<void> {
  start();
  const deadline = Date.now() + timeoutMs;
  for (let wait = 0; ; wait = Math.min(Math.max(1, wait * 2), 50)) {
    await sleep(wait);
    if (isFrozen()) return;
    if (Date.now() > deadline) {
      undo();
      throw new Error(`the cgroup did not freeze within ${timeoutMs} ms`);
    }
  }
}

/** usage minus the reclaimable inactive file cache (kubelet's "working set"). */
export function workingSetBytes(usageFile: string, statFile: string, inactiveKey: string): number {
  const usage = readNumber(usageFile);
  let stat: Record<string, number> = {};
  try {
    stat = readKeyed(statFile);
  } catch {
    // no stat file: count the whole usage
  }
  return Math.max(0, usage - (stat[inactiveKey] ?? 0));
}

export function isErrno(error: unknown, code: string): boolean {
  return (
    typeof error === "object" && error !== null && (error as NodeJS.ErrnoException).code === code
  );
}
