/**
 * The host's strict reading of a workspace archive as it streams out of a
 * session. The archive is made by the session's agent, which user code can
 * take over, so nothing in it is trusted: only the subset of POSIX tar that
 * Warden's own agent writes passes — regular files, directories, symbolic
 * links that stay inside, and pax `path`/`linkpath` records — each header
 * checksummed, every name relative with no `..`, no entry under a link or a
 * file, nothing after the end. An archive that passes here is one the
 * restoring agent can extract without writing outside /workspace.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";

const BLOCK = 512;
/** Longest path or link target (bytes): Linux's PATH_MAX. */
export const MAX_TAR_PATH_BYTES = 4096;
/** A pax header's body, at most (two paths and their keys fit easily). */
const MAX_PAX_BYTES = 16 * 1024;

export class TarRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarRefused";
  }
}

type Kind = "file" | "directory" | "symlink";

/** A tar header field: text up to its first NUL. */
export function field(block: Buffer, at: number, length: number): string {
  const raw = block.subarray(at, at + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? length : end).toString("utf8");
}

/**
 * An octal number field, strictly: digits, then spaces or NULs (and, when
 * `padded`, leading spaces, as old tar writers put them).
 */
export function octal(
  block: Buffer,
  at: number,
  length: number,
  what: string,
  padded = false,
): number {
  const raw = block
    .subarray(at, at + length)
    .toString("latin1")
    .replace(/[\0 ]+$/, "");
  const text = padded ? raw.replace(/^ +/, "") : raw;
  if (!/^[0-7]{1,11}$/.test(text)) throw new TarRefused(`${what}: not an octal number`);
  return parseInt(text, 8);
}

/** Whether a header block's checksum field matches its bytes. */
export function checksumOk(block: Buffer, padded = false): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum === octal(block, 148, 8, "checksum", padded);
}

/** A member's name, refused unless it is relative, plain and short. */
export function checkMemberPath(name: string, what = "path"): string {
  const path = name.endsWith("/") ? name.slice(0, -1) : name;
  if (path === "" || Buffer.byteLength(path) > MAX_TAR_PATH_BYTES)
    throw new TarRefused(`${what}: empty or longer than ${MAX_TAR_PATH_BYTES} bytes`);
  if (path.includes("\0")) throw new TarRefused(`${what}: contains NUL`);
  if (path.startsWith("/")) throw new TarRefused(`${what}: absolute (${path.slice(0, 64)})`);
  for (const part of path.split("/"))
    if (part === "" || part === "." || part === "..")
      throw new TarRefused(`${what}: '${part}' segment in ${path.slice(0, 64)}`);
  return path;
}

/**
 * A link's target stays inside: relative, and with no `..` at all (a `..`
 * after another link, `s -> .` then `t -> s/..`, would climb out).
 */
export function checkLinkTarget(target: string): string {
  if (target === "" || Buffer.byteLength(target) > MAX_TAR_PATH_BYTES)
    throw new TarRefused(`link target: empty or longer than ${MAX_TAR_PATH_BYTES} bytes`);
  if (target.includes("\0")) throw new TarRefused("link target: contains NUL");
  if (target.startsWith("/"))
    throw new TarRefused(`link target: absolute (${target.slice(0, 64)})`);
  if (target.split("/").includes(".."))
    throw new TarRefused(`link target: climbs with '..' (${target.slice(0, 64)})`);
  return target;
}

/** `len key=value\n` records; only path and linkpath, each once. */
function parsePax(body: Buffer): { path?: string; linkpath?: string } {
  const out: { path?: string; linkpath?: string } = {};
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    if (space < 0 || space - at > 6) throw new TarRefused("pax record: no length");
    const lengthText = body.subarray(at, space).toString("latin1");
    if (!/^[1-9][0-9]*$/.test(lengthText)) throw new TarRefused("pax record: bad length");
    const end = at + Number(lengthText);
    if (end > body.length || body[end - 1] !== 0x0a) throw new TarRefused("pax record: bad length");
    const record = body.subarray(space + 1, end - 1).toString("utf8");
    const eq = record.indexOf("=");
    const key = record.slice(0, eq);
    if (eq < 0 || (key !== "path" && key !== "linkpath") || out[key] !== undefined)
      throw new TarRefused(`pax record: key '${key.slice(0, 32)}' not allowed`);
    out[key] = record.slice(eq + 1);
    at = end;
  }
  return out;
}

/** Paths are remembered by digest: memory per entry stays small whatever its length. */
function pathKey(path: string): string {
  return createHash("sha256").update(path).digest("base64");
}

/** Reads an archive piece by piece; `finish` says whether it ended properly. */
export class TarChecker {
  private pending = Buffer.alloc(0);
  /** Bytes of the current member's content (or pax body) still to come, and its padding. */
  private contentLeft = 0;
  private padLeft = 0;
  private paxBody: Buffer[] | null = null;
  private pax: { path?: string; linkpath?: string } = {};
  private zeroBlocks = 0;
  private readonly kinds = new Map<string, Kind>();
  bytes = 0;
  files = 0;

  constructor(private readonly maxEntries: number) {}

  get entries(): number {
    return this.kinds.size;
  }

  /** Checks the next piece; throws TarRefused at the first thing not allowed. */
  push(piece: Buffer): void {
    this.bytes += piece.length;
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, piece]) : piece;
    for (;;) {
      if (this.contentLeft > 0 || this.padLeft > 0) {
        const take = Math.min(data.length, this.contentLeft + this.padLeft);
        const content = Math.min(take, this.contentLeft);
        if (this.paxBody && content > 0) this.paxBody.push(data.subarray(0, content));
        this.contentLeft -= content;
        this.padLeft -= take - content;
        data = data.subarray(take);
        if (this.contentLeft === 0 && this.padLeft === 0 && this.paxBody) {
          this.pax = parsePax(Buffer.concat(this.paxBody));
          this.paxBody = null;
        }
        if (data.length === 0) break;
        continue;
      }
      if (data.length < BLOCK) break;
      this.header(data.subarray(0, BLOCK));
      data = data.subarray(BLOCK);
    }
    this.pending = Buffer.from(data);
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      if (this.paxBody || this.pax.path !== undefined || this.pax.linkpath !== undefined)
        throw new TarRefused("archive ends after a pax header");
      this.zeroBlocks++;
      return;
    }
    if (this.zeroBlocks > 0) throw new TarRefused("data after the archive's end");
    if (field(block, 257, 6) !== "ustar" || field(block, 263, 2) !== "00")
      throw new TarRefused("header: not a POSIX (ustar) header");
    if (!checksumOk(block)) throw new TarRefused("header: bad checksum");
    const type = String.fromCharCode(block[156]!);
    const size = octal(block, 124, 12, "size");
    if (type === "x") {
      if (this.paxBody || this.pax.path !== undefined || this.pax.linkpath !== undefined)
        throw new TarRefused("two pax headers in a row");
      if (size > MAX_PAX_BYTES) throw new TarRefused(`pax header: over ${MAX_PAX_BYTES} bytes`);
      this.paxBody = [];
      this.expect(size);
      return;
    }
    const kind: Kind | undefined =
      type === "0" ? "file" : type === "5" ? "directory" : type === "2" ? "symlink" : undefined;
    if (!kind) throw new TarRefused(`entry type '${type}' not allowed (devices, hard links...)`);
    const prefix = field(block, 345, 155);
    const name =
      this.pax.path ?? (prefix ? `${prefix}/${field(block, 0, 100)}` : field(block, 0, 100));
    const path = checkMemberPath(name);
    if (kind === "symlink") checkLinkTarget(this.pax.linkpath ?? field(block, 157, 100));
    if (kind !== "file" && size !== 0) throw new TarRefused(`${path}: a ${kind} with content`);
    this.pax = {};
    const key = pathKey(path);
    if (this.kinds.has(key)) throw new TarRefused(`${path.slice(0, 64)}: listed twice`);
    // A member's directory comes before it (Warden's agent walks in that
    // order): so nothing goes under a link, which the extractor would write
    // through, or under a file.
    const dir = posix.dirname(path);
    const parent = dir === "." ? "directory" : this.kinds.get(pathKey(dir));
    if (parent !== "directory")
      throw new TarRefused(
        `${path.slice(0, 64)}: its directory is ${parent ? `a ${parent}` : "not listed before it"}`,
      );
    if (this.kinds.size >= this.maxEntries)
      throw new TarRefused(`more than ${this.maxEntries} entries`);
    this.kinds.set(key, kind);
    if (kind === "file") this.files++;
    this.expect(size);
  }

  private expect(size: number): void {
    this.contentLeft = size;
    this.padLeft = (BLOCK - (size % BLOCK)) % BLOCK;
  }

  /** Throws unless the archive ended with its two zero blocks. */
  finish(): void {
    if (this.zeroBlocks < 2 || this.pending.length > 0 || this.contentLeft + this.padLeft > 0)
      throw new TarRefused("the archive is cut short");
  }
}
