/** Writes zip archives for tests, including hostile ones (lying sizes, links, traversal). */
import { crc32, deflateRawSync } from "node:zlib";

export interface ZipItem {
  name: string;
  content: Buffer | string;
  deflate?: boolean;
  /** Unix mode (file type and permissions); default a regular file 0644. */
  mode?: number;
  /** The uncompressed size to claim (default the real one). */
  claimSize?: number;
}

export function writeZip(items: ZipItem[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const it of items) {
    const content = Buffer.isBuffer(it.content) ? it.content : Buffer.from(it.content);
    const data = it.deflate ? deflateRawSync(content) : content;
    const name = Buffer.from(it.name);
    const size = it.claimSize ?? content.length;
    const crc = crc32(content);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(it.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(0x031e, 4); // made by Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(it.deflate ? 8 : 0, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((it.mode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(items.length, 8);
  end.writeUInt16LE(items.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A Judge0 answer as the tests read it (only the members they use are typed). */
export interface Answer {
  token: string;
  stdout: string;
  source_code: string;
  created_at: string;
  time: string;
  error: string;
  status: { id: number; description: string };
  submissions: Answer[];
  additional_files: string[];
  [key: string]: unknown;
}
