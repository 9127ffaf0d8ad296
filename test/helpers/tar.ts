/**
 * Tar archives built by hand for the tests: well-formed ones, and the hostile
 * shapes a taken-over agent could send (escapes, links out, devices, lies).
 */
const BLOCK = 512;

export interface TarMember {
  name: string;
  /** 0 file, 5 directory, 2 symlink, x pax, or anything else to test refusals. */
  type?: string;
  content?: Buffer | string;
  linkname?: string;
  /** Overrides the header's size field (a lie about the content). */
  size?: number;
  /** Breaks the header's checksum. */
  badChecksum?: boolean;
  prefix?: string;
}

function put(b: Buffer, at: number, len: number, text: string): void {
  Buffer.from(text, "utf8").copy(b, at, 0, len);
}

export function tarHeader(m: TarMember, size: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  put(b, 0, 100, m.name);
  put(b, 100, 8, "0000644\0");
  put(b, 108, 8, "0000000\0");
  put(b, 116, 8, "0000000\0");
  put(b, 124, 12, (m.size ?? size).toString(8).padStart(11, "0") + "\0");
  put(b, 136, 12, "00000000000\0");
  put(b, 156, 1, m.type ?? "0");
  put(b, 157, 100, m.linkname ?? "");
  put(b, 257, 6, "ustar\0");
  put(b, 263, 2, "00");
  if (m.prefix) put(b, 345, 155, m.prefix);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  if (m.badChecksum) sum += 1;
  put(b, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return b;
}

/** An archive of `members`, ended (unless `end` is false) by two zero blocks. */
export function tar(members: TarMember[], end = true): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const content = Buffer.from(m.content ?? "");
    parts.push(tarHeader(m, content.length), content);
    parts.push(Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK));
  }
  if (end) parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** A pax header record list, `len key=value\n` each. */
export function pax(records: Record<string, string>): string {
  let out = "";
  for (const [key, value] of Object.entries(records)) {
    const body = ` ${key}=${value}\n`;
    const n = Buffer.byteLength(body);
    let len = n + String(n).length;
    if (String(len).length > String(n).length) len++;
    out += `${len}${body}`;
  }
  return out;
}
