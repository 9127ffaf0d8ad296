/**
 * Walking an environment's tree: copying what a build sandbox produced into
 * the data dir, and the tree's content digest. The source of a copy is
 * hostile (the installer's output), read by the host after every process of
 * the sandbox is gone. Nothing is followed: lstat on every entry, O_NOFOLLOW
 * on every open, fstat of the opened file; only directories, regular files
 * and relative symbolic links that stay inside the tree are taken, anything
 * else (a fifo, a device, a link out) fails the build. Count, bytes and depth
 * are bounded as entries are met, and bytes are counted as they are read.
 */
import { constants, type Stats } from "node:fs";
import { createHash, type Hash } from "node:crypto";
import { lstat, mkdir, open, readdir, readlink, symlink } from "node:fs/promises";
import { join, posix } from "node:path";
import { WardenError } from "../errors.js";

export interface TreeBounds {
  maxBytes: number;
  maxFiles: number;
}

export interface TreeSummary {
  sizeBytes: number;
  fileCount: number;
  digest: string;
}

const MAX_DEPTH = 64;
const MAX_NAME_BYTES = 255;
const CHUNK = 1024 * 1024;

/** A name that cannot be shown or stored faithfully (not UTF-8, control characters). */
function badName(raw: Buffer): boolean {
  const text = raw.toString("utf8");
  return (
    raw.length > MAX_NAME_BYTES ||
    !Buffer.from(text, "utf8").equals(raw) ||
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f]/.test(text)
  );
}

/** Normal modes: the tree is root's, readable by every sandbox uid, writable by none. */
function modeOf(st: Stats): number {
  if (st.isDirectory()) return 0o755;
  return st.mode & 0o111 ? 0o755 : 0o644;
}

class Walk {
  bytes = 0;
  files = 0;
  /** Links met, checked once the whole tree is there (a link may name what comes later). */
  readonly links: { path: string; target: string }[] = [];
  readonly hash: Hash = createHash("sha256");

  constructor(
    private readonly bounds: TreeBounds,
    private readonly what: string,
  ) {}

  refuse(path: string, why: string): never {
    throw new WardenError("INVALID_REQUEST", `${this.what}: ${path}: ${why}`);
  }

  count(path: string): void {
    if (++this.files > this.bounds.maxFiles)
      this.refuse(
        path,
        `more than ${this.bounds.maxFiles} files and directories (environments.build.maxFiles)`,
      );
  }

  add(path: string, n: number): void {
    this.bytes += n;
    if (this.bytes > this.bounds.maxBytes)
      this.refuse(
        path,
        `more than ${this.bounds.maxBytes} bytes in all (environments.build.maxSizeMb)`,
      );
  }
}

/**
 * Walks `src` (relative paths from `rel`), hashing a canonical record of each
 * entry in sorted order, and copies it under `dest` when given.
 */
async function walkDir(
  w: Walk,
  src: string,
  dest: string | null,
  rel: string,
  depth: number,
): Promise<void> {
  if (depth > MAX_DEPTH) w.refuse(rel, `nested deeper than ${MAX_DEPTH} directories`);
  const names = (await readdir(src, { encoding: "buffer" })).sort((a, b) => Buffer.compare(a, b));
  for (const raw of names) {
    if (badName(raw)) w.refuse(rel || ".", "an entry's name is not printable UTF-8");
    const name = raw.toString("utf8");
    const path = rel ? `${rel}/${name}` : name;
    const from = join(src, name);
    const to = dest === null ? null : join(dest, name);
    const st = await lstat(from);
    w.count(path);
    if (st.isDirectory()) {
      w.hash.update(`D ${path} 755\0`);
      if (to) await mkdir(to, { mode: 0o755 });
      await walkDir(w, from, to, path, depth + 1);
    } else if (st.isSymbolicLink()) {
      const target = await readlink(from);
      // Only links that resolve inside the tree: in the sandbox nothing else is there to reach.
      const resolved = posix.normalize(posix.join(posix.dirname(path), target));
      if (target.startsWith("/") || resolved === ".." || resolved.startsWith("../"))
        w.refuse(path, "a symbolic link leading out of the tree");
      w.links.push({ path, target });
      w.add(path, Buffer.byteLength(target));
      w.hash.update(`L ${path} ${target}\0`);
      if (to) await symlink(target, to);
    } else if (st.isFile()) {
      await copyFile(w, from, to, path, modeOf(st));
    } else w.refuse(path, "not a regular file, directory or symbolic link");
  }
}

async function copyFile(
  w: Walk,
  from: string,
  to: string | null,
  path: string,
  mode: number,
): Promise<void> {
  // O_NONBLOCK: a fifo swapped in cannot hold the open; fstat then refuses it.
  const input = await open(from, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await input.stat();
    if (!st.isFile()) w.refuse(path, "not a regular file");
    w.add(path, st.size);
    w.hash.update(`F ${path} ${mode.toString(8)} ${st.size}\0`);
    const output = to
      ? await open(to, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode)
      : null;
    try {
      const buffer = Buffer.allocUnsafe(CHUNK);
      let seen = 0;
      for (;;) {
        const { bytesRead } = await input.read(buffer, 0, CHUNK, null);
        if (bytesRead === 0) break;
        seen += bytesRead;
        // The size was counted at fstat; a file that grows past it is refused.
        if (seen > st.size) w.refuse(path, "changed while it was read");
        const piece = buffer.subarray(0, bytesRead);
        w.hash.update(piece);
        if (output) await output.write(piece);
      }
      if (seen !== st.size) w.refuse(path, "changed while it was read");
      if (output) await output.chmod(mode);
    } finally {
      await output?.close();
    }
  } finally {
    await input.close();
  }
}

/**
 * Copies the directory `src` (a dead sandbox's output) to `dest` (created
 * here), within `bounds`; throws INVALID_REQUEST naming the entry and the
 * bound. The caller removes `dest` on failure.
 */
export async function copyTree(
  src: string,
  dest: string,
  bounds: TreeBounds,
  what: string,
): Promise<{ sizeBytes: number; fileCount: number }> {
  const top = await lstat(src).catch(() => null);
  if (!top?.isDirectory()) throw new WardenError("INVALID_REQUEST", `${what}: no output`);
  const w = new Walk(bounds, what);
  await mkdir(dest, { mode: 0o755 });
  await walkDir(w, src, dest, "", 0);
  for (const link of w.links)
    if (!(await staysInside(dest, link.path, link.target)))
      w.refuse(link.path, "a symbolic link leading out of the tree through another link");
  return { sizeBytes: w.bytes, fileCount: w.files };
}

/**
 * Whether the kernel, following `target` from the link at `path` in the
 * copied tree `root`, stays inside it. Reading the target as text is not
 * enough: `a/../..` means "out" when `a` is itself a link to somewhere deep
 * (a chain that ends at the host's `/` once bound). So every step the
 * kernel takes through the target must be a real directory of the tree; the
 * last one may be anything (a file, a dangling name, another checked link).
 */
async function staysInside(root: string, path: string, target: string): Promise<boolean> {
  const at = path.split("/").slice(0, -1); // real directories: the copy made them
  const steps = target.split("/").filter((p) => p !== "" && p !== ".");
  for (const [i, step] of steps.entries()) {
    if (step === "..") {
      if (at.length === 0) return false;
      at.pop();
      continue;
    }
    at.push(step);
    if (i === steps.length - 1) break;
    const st = await lstat(join(root, ...at)).catch(() => null);
    if (!st?.isDirectory()) return false;
  }
  return true;
}

/**
 * `base/parts...` as a real directory, reached through real directories only:
 * a build's output dir is named by the host but made by the sandbox, and one
 * that is a link (to `/` of whatever root the host reads it through) would
 * have the host copy its own files into the environment.
 */
export async function realDirBeneath(base: string, ...parts: string[]): Promise<string> {
  let path = base;
  for (const part of parts) {
    path = join(path, part);
    const st = await lstat(path).catch(() => null);
    if (!st?.isDirectory())
      throw new WardenError("INVALID_REQUEST", `${parts.join("/")}: not a plain directory`);
  }
  return path;
}

/** The digest of a tree: sha256 over its sorted walk (paths, types, modes, bytes, link targets). */
export async function treeDigest(dir: string, bounds: TreeBounds): Promise<TreeSummary> {
  const w = new Walk(bounds, "environment");
  await walkDir(w, dir, null, "", 0);
  return { sizeBytes: w.bytes, fileCount: w.files, digest: `sha256:${w.hash.digest("hex")}` };
}
