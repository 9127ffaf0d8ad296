/**
 * Who owns a box. Box ids embed the owning Warden process (pid and start
 * time), so the janitor can tell a crashed Warden's leftovers from a live
 * neighbour's sandboxes on the same host, without any shared database.
 */
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";

export interface Owner {
  pid: number;
  startTicks: number;
}

/** Field 22 of /proc/PID/stat: start time in clock ticks since boot. */
export function processStartTicks(pid: number | "self"): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm (field 2) may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return null;
  }
}

/** Parent pid (field 4) of a process, or null when it is gone. */
export function parentPid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return null;
  }
}

let self: Owner | undefined;
export function currentOwner(): Owner {
  self ??= { pid: process.pid, startTicks: processStartTicks("self") ?? 0 };
  return self;
}

export function isOwnerAlive(owner: Owner): boolean {
  return processStartTicks(owner.pid) === owner.startTicks;
}

const BOX_NAME = /^b(\d+)-(\d+)-([a-z0-9]+)(?:-(\d+))?$/;

/** `b<pid>-<startTicks>`: the prefix of every name this Warden process owns. */
export function ownerTag(owner: Owner = currentOwner()): string {
  return `b${owner.pid}-${owner.startTicks}`;
}

/** `<ownerTag>-<random>`; its cgroups append `-<run number>`. */
export function newBoxId(owner: Owner = currentOwner()): string {
  return `${ownerTag(owner)}-${randomBytes(5).toString("hex")}`;
}

/** The owner named by an owner tag (`b<pid>-<startTicks>`). */
export function parseOwnerTag(tag: string): Owner | null {
  const m = /^b(\d+)-(\d+)$/.exec(tag);
  return m ? { pid: Number(m[1]), startTicks: Number(m[2]) } : null;
}

export function parseBoxName(name: string): { boxId: string; owner: Owner } | null {
  const m = BOX_NAME.exec(name);
  if (!m) return null;
  return {
    boxId: `b${m[1]}-${m[2]}-${m[3]}`,
    owner: { pid: Number(m[1]), startTicks: Number(m[2]) },
  };
}
