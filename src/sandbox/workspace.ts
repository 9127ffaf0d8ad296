/**
 * Writing input files into a box's workspace, as root, before the sandbox
 * starts. Paths are checked first: relative, no `..`, no empty or dot-only
 * parts, so nothing is ever written outside the workspace.
 */
import { chownSync, mkdirSync, writeFileSync } from "node:fs";
import * as asyncFs from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { WardenError } from "../errors.js";
import type { SandboxFile } from "./types.js";

export const MAX_PATH_BYTES = 1024;
/**
 * Created empty in every workspace: where a program leaves artifacts. It must
 * exist, or a program that writes output/x.txt fails for want of a directory.
 * (Only a non-empty one keeps the workspace for collection: see warden-exec.)
 */
export const OUTPUT_DIR = "output";
export const MAX_NAME_BYTES = 255;

/** Returns the normalised relative path, or throws INVALID_REQUEST naming the problem. */
export function checkWorkspacePath(path: string, field = "path"): string {
  const fail = (why: string): never => {
    throw new WardenError("INVALID_REQUEST", `${field}: ${why}`, { details: { field, path } });
  };
  if (path.length === 0) fail("must not be empty");
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) fail(`must be at most ${MAX_PATH_BYTES} bytes`);
  if (path.includes("\0")) fail("must not contain NUL");
  if (path.startsWith("/")) fail("must be relative to /workspace");
  const parts = path.split("/");
  for (const part of parts) {
    if (part === "..") fail("must not contain '..'");
    if (part === "" || part === ".") fail("must not contain empty or '.' segments");
    if (Buffer.byteLength(part) > MAX_NAME_BYTES)
      fail(`each name must be at most ${MAX_NAME_BYTES} bytes`);
  }
  return posix.normalize(path);
}

/** The files' paths checked (INVALID_REQUEST naming the file) and unique. */
export function checkFiles(files: readonly SandboxFile[]): readonly SandboxFile[] {
  const seen = new Set<string>();
  for (const [i, file] of files.entries()) {
    const path = checkWorkspacePath(file.path, `files[${i}].path`);
    if (seen.has(path))
      throw new WardenError("INVALID_REQUEST", `files[${i}].path: duplicate path ${path}`);
    seen.add(path);
  }
  return files;
}

/**
 * Up to this much, the files are written with synchronous calls: on a tmpfs
 * they take microseconds, far less than a trip through the thread pool, and
 * they sit on a warm run's path. Larger uploads go through the thread pool.
 */
const SYNC_FILL_BYTES = 256 * 1024;

const syncFs = {
  mkdir: async (path: string, options: { mode: number }): Promise<void> =>
    void mkdirSync(path, options),
  writeFile: async (
    path: string,
    content: string | Buffer,
    options: { mode: number; flag: string },
  ): Promise<void> => writeFileSync(path, content, options),
  chown: async (path: string, uid: number, gid: number): Promise<void> => chownSync(path, uid, gid),
};

/**
 * Writes the files and output/ into a fresh workspace (warden-exec made the
 * directory), owned by `uid`. `workspace` is a host path, usually through
 * /proc/PID/root into the box's own mount namespace.
 */
export async function fillWorkspace(
  workspace: string,
  files: readonly SandboxFile[],
  uid: number,
): Promise<void> {
  const dirs = { workspace };
  const made = new Set<string>();
  const bytes = files.reduce((n, f) => n + f.content.length, 0);
  const { mkdir, writeFile, chown } = bytes <= SYNC_FILL_BYTES ? syncFs : asyncFs;
  for (const file of files) {
    const rel = checkWorkspacePath(file.path);
    const target = join(dirs.workspace, rel);
    // Create parents one by one so each gets the sandbox uid.
    const parents: string[] = [];
    for (let d = dirname(target); d !== dirs.workspace && !made.has(d); d = dirname(d))
      parents.unshift(d);
    for (const d of parents) {
      await mkdir(d, { mode: 0o755 }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "EEXIST") throw error;
      });
      await chown(d, uid, uid);
      made.add(d);
    }
    await writeFile(target, file.content, { mode: file.mode ?? 0o644, flag: "wx" });
    await chown(target, uid, uid);
  }
  // After the files: a request that sent output/... already made it, and one
  // that sent a file named `output` keeps it.
  const output = join(dirs.workspace, OUTPUT_DIR);
  if (!made.has(output))
    await mkdir(output, { mode: 0o755 }).then(
      () => chown(output, uid, uid),
      (error: NodeJS.ErrnoException) => {
        if (error.code !== "EEXIST") throw error;
      },
    );
}
