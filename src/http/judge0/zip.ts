/**
 * A strict, bounded reader of the zip archives Judge0 takes as
 * `additional_files`. It reads the central directory, accepts only stored
 * and deflated regular files, and refuses before inflating anything that
 * could cost more than the caller's budget: a zip bomb (a tiny entry that
 * inflates to gigabytes) is stopped by zlib's maxOutputLength at the bytes
 * still allowed, never after. Names are checked as workspace paths (no
 * absolute path, no `..`, no backslash), symlinks and encrypted or ZIP64
 * entries are refused, each entry's size and CRC must match what it says.
 */
import { crc32, inflateRawSync } from "node:zlib";

export class ZipError extends Error {}

export interface ZipEntry {
  path: string;
  content: Buffer;
}

export interface ZipLimits {
  maxEntries: number;
  /** Total bytes of every entry once inflated. */
  maxTotalBytes: number;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function checkName(name: string): string {
  if (
    name.length === 0 ||
    name.length > 1024 ||
    name.startsWith("/") ||
    name.includes("\\") ||
    name.includes("\0") ||
    name.split("/").some((part) => part === ".." || part === ".")
  )
    throw new ZipError(
      `entry name ${JSON.stringify(name.slice(0, 100))} is not a safe relative path`,
    );
  return name;
}

export function readZip(zip: Buffer, limits: ZipLimits): ZipEntry[] {
  // The end record is in the last 22 + 65535 (comment) bytes.
  let end = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--)
    if (zip.readUInt32LE(i) === EOCD) {
      end = i;
      break;
    }
  if (end < 0) throw new ZipError("not a zip archive (no end of central directory)");
  const count = zip.readUInt16LE(end + 10);
  const cdSize = zip.readUInt32LE(end + 12);
  const cdOffset = zip.readUInt32LE(end + 16);
  if (count === 0xffff || cdOffset === 0xffffffff)
    throw new ZipError("ZIP64 archives are not accepted");
  if (count > limits.maxEntries) throw new ZipError(`more than ${limits.maxEntries} entries`);
  if (cdOffset + cdSize > end) throw new ZipError("central directory out of bounds");
  const entries: ZipEntry[] = [];
  const seen = new Set<string>();
  let total = 0;
  let at = cdOffset;
  for (let n = 0; n < count; n++) {
    if (at + 46 > end || zip.readUInt32LE(at) !== CENTRAL)
      throw new ZipError("corrupt central directory");
    const flags = zip.readUInt16LE(at + 8);
    const method = zip.readUInt16LE(at + 10);
    const crc = zip.readUInt32LE(at + 16);
    const compressed = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const next = at + 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    const mode = zip.readUInt32LE(at + 38) >>> 16;
    const local = zip.readUInt32LE(at + 42);
    if (next > end) throw new ZipError("corrupt central directory");
    const rawName = zip.subarray(at + 46, at + 46 + nameLength).toString("utf8");
    at = next;
    if (flags & 0x1) throw new ZipError(`${rawName}: encrypted entries are not accepted`);
    if (rawName.endsWith("/")) {
      checkName(rawName.slice(0, -1));
      continue; // directories appear as their files' parents
    }
    const name = checkName(rawName);
    // Unix mode in the upper half of the external attributes: only regular files.
    const type = mode & 0o170000;
    if (type !== 0 && type !== 0o100000)
      throw new ZipError(`${name}: only regular files are accepted (no links)`);
    if (seen.has(name)) throw new ZipError(`${name}: given twice`);
    seen.add(name);
    if (method !== 0 && method !== 8)
      throw new ZipError(
        `${name}: compression method ${method} is not supported (stored or deflate only)`,
      );
    if (size > limits.maxTotalBytes - total)
      throw new ZipError(`unpacks to more than ${limits.maxTotalBytes} bytes`);
    if (local + 30 > cdOffset || zip.readUInt32LE(local) !== LOCAL)
      throw new ZipError(`${name}: corrupt local header`);
    const dataAt = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    if (dataAt + compressed > cdOffset) throw new ZipError(`${name}: data out of bounds`);
    const data = zip.subarray(dataAt, dataAt + compressed);
    let content: Buffer;
    if (method === 0) content = data;
    else {
      try {
        // Never more than the entry claims, which is within the budget: a bomb fails here.
        content = inflateRawSync(data, { maxOutputLength: Math.max(size, 1) });
      } catch {
        throw new ZipError(`${name}: does not inflate to its stated ${size} bytes`);
      }
    }
    if (content.length !== size) throw new ZipError(`${name}: size does not match its header`);
    if (crc32(content) !== crc) throw new ZipError(`${name}: CRC mismatch`);
    total += size;
    entries.push({ path: name, content });
  }
  return entries;
}
