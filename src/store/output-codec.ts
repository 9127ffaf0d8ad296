/**
 * How program output is stored: as bytes no longer than what the program
 * wrote. Output reaches the store as text decoded from the program's bytes,
 * where every invalid byte became U+FFFD (3 bytes in UTF-8) — and as JSON a
 * control byte becomes `\u0001` (6 bytes). A hostile program could so turn
 * `outputBytes` of output into 3–6× as much database and WAL. Stored here as
 * UTF-8 with each U+FFFD written as the single byte 0xFF (which UTF-8 never
 * uses), every character costs at most the bytes it was decoded from.
 * Reading back is a plain UTF-8 decode: each 0xFF decodes to one U+FFFD.
 */

const REPLACEMENT = "\uFFFD";
const REPLACEMENT_UTF8 = Buffer.from(REPLACEMENT, "utf8");
/** Encode in slices so a long output never needs a second full-size 3× copy. */
const SLICE_CHARS = 1 << 16;

/** Writes each U+FFFD of a UTF-8 buffer as 0xFF, in place; returns the used part. */
function compact(utf8: Buffer): Buffer {
  let write = 0;
  let read = 0;
  for (;;) {
    // EF BF BD can only start at a character boundary in valid UTF-8.
    const at = utf8.indexOf(REPLACEMENT_UTF8, read);
    if (at < 0) break;
    write += utf8.copy(utf8, write, read, at);
    utf8[write++] = 0xff;
    read = at + REPLACEMENT_UTF8.length;
  }
  write += utf8.copy(utf8, write, read);
  return utf8.subarray(0, write);
}

export function encodeOutput(text: string): Buffer {
  if (!text.includes(REPLACEMENT)) return Buffer.from(text, "utf8");
  const parts: Buffer[] = [];
  for (let start = 0; start < text.length;) {
    let end = Math.min(start + SLICE_CHARS, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end++; // keep a surrogate pair whole
    parts.push(compact(Buffer.from(text.slice(start, end), "utf8")));
    start = end;
  }
  return Buffer.concat(parts);
}

export function decodeOutput(bytes: Buffer): string {
  return bytes.toString("utf8");
}
