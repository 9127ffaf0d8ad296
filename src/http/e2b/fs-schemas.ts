/**
 * The messages of envd's `filesystem.Filesystem` service as the E2B SDK sends
 * and reads them (proto3 JSON: lowerCamel names, snake_case accepted, absent
 * fields at their default, int64 as a string, enums by name, timestamps in
 * RFC 3339), and the EntryInfo Warden answers with. Written from the wire
 * format the SDK speaks, not from E2B's sources.
 */
import { posix } from "node:path";
import { z } from "zod";
import type { PathStat } from "../../sessions/session.js";
import { toE2bPath } from "./plane.js";

const path = z.string().max(4096).default("");
const flag = z.boolean().default(false);

/** A field under its proto3 JSON name or its proto name (both are valid on the wire). */
function alias<T extends z.ZodRawShape>(shape: T, snake: Record<string, keyof T & string>) {
  return z.preprocess((value) => {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const [from, to] of Object.entries(snake))
      if (out[to] === undefined && out[from] !== undefined) out[to] = out[from];
    return out;
  }, z.object(shape));
}

export const PathRequestSchema = z.object({ path });
export type PathRequest = z.infer<typeof PathRequestSchema>;

export const ListDirRequestSchema = z.object({
  path,
  /** 0 (absent) means 1, as envd reads it. */
  depth: z.number().int().min(0).max(4096).default(1),
});
export type ListDirRequest = z.infer<typeof ListDirRequestSchema>;

export const MoveRequestSchema = z.object({ source: path, destination: path });
export type MoveRequest = z.infer<typeof MoveRequestSchema>;

export const WatchDirRequestSchema = alias(
  { path, recursive: flag, includeEntry: flag, allowNetworkMounts: flag },
  { include_entry: "includeEntry", allow_network_mounts: "allowNetworkMounts" },
);
export type WatchDirRequest = z.infer<typeof WatchDirRequestSchema>;

/** The polling watch calls: accepted in any shape, answered `unimplemented`. */
export const AnyRequestSchema = z.unknown();

const FILE_TYPE = {
  file: "FILE_TYPE_FILE",
  directory: "FILE_TYPE_DIRECTORY",
  symlink: "FILE_TYPE_SYMLINK",
  // The SDK drops entries of unspecified type (sockets, fifos, devices).
  other: "FILE_TYPE_UNSPECIFIED",
} as const;

export interface EntryInfo {
  name: string;
  type: (typeof FILE_TYPE)[keyof typeof FILE_TYPE];
  path: string;
  size: string;
  mode?: number;
  permissions?: string;
  owner?: string;
  group?: string;
  modifiedTime?: string;
  symlinkTarget?: string;
}

/** The sandbox's one user (uid 1000) is E2B's default `user`; others by number. */
const userName = (id: number): string => (id === 1000 ? "user" : String(id));

/** `-rw-r--r--` as Go's FileMode.String() writes it (d: directory, L: link). */
export function permissions(type: keyof typeof FILE_TYPE, mode: number): string {
  const kind = type === "directory" ? "d" : type === "symlink" ? "L" : "-";
  let rwx = "";
  for (let shift = 6; shift >= 0; shift -= 3)
    rwx += `${mode & (4 << shift) ? "r" : "-"}${mode & (2 << shift) ? "w" : "-"}${mode & (1 << shift) ? "x" : "-"}`;
  return kind + rwx;
}

/** EntryInfo of a workspace path from the agent's stat of it. */
export function statEntry(rel: string, st: NonNullable<PathStat["entry"]>): EntryInfo {
  const shown = toE2bPath(rel);
  return {
    name: posix.basename(shown),
    type: FILE_TYPE[st.type],
    path: shown,
    size: String(st.size),
    mode: st.mode & 0o777,
    permissions: permissions(st.type, st.mode),
    owner: userName(st.uid),
    group: userName(st.gid),
    ...(st.mtime ? { modifiedTime: st.mtime } : {}),
    ...(st.target !== null ? { symlinkTarget: st.target } : {}),
  };
}

/**
 * EntryInfo of a listing's entry. A listing carries name, type, size and
 * time only: mode, permissions and owner are left at their defaults (getInfo
 * has them).
 */
export function listedEntry(
  rel: string,
  e: { name: string; type: string; size: number; mtime: string | null },
): EntryInfo {
  const type = (e.type in FILE_TYPE ? e.type : "other") as keyof typeof FILE_TYPE;
  return {
    name: e.name,
    type: FILE_TYPE[type],
    path: toE2bPath(rel),
    size: String(e.size),
    ...(e.mtime ? { modifiedTime: e.mtime } : {}),
  };
}

/** Warden's watch kinds as envd's EventType names. */
export const EVENT_TYPE = {
  created: "EVENT_TYPE_CREATE",
  modified: "EVENT_TYPE_WRITE",
  removed: "EVENT_TYPE_REMOVE",
} as const;
