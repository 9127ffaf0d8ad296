/**
 * Which files may leave a sandbox as artifacts: the type is decided by the
 * content (magic bytes, or valid UTF-8 text), never by the name alone; a name
 * whose extension claims another type than the content is refused, and so is
 * anything outside the allowed types (executables above all). Limits on size
 * and count apply per run.
 */
import { extname } from "node:path";
import { fileTypeFromBuffer } from "file-type";

/** Text types by extension; any other valid UTF-8 text is text/plain. */
const TEXT_TYPES: Record<string, string> = {
  ".csv": "text/csv",
  ".tsv": "text/csv",
  ".md": "text/markdown",
  ".html": "text/html",
  ".htm": "text/html",
  ".json": "application/json",
  ".xml": "application/xml",
  ".svg": "image/svg+xml",
};

/** Extensions whose content must be the binary type they name. */
const BINARY_EXTENSIONS: Record<string, string[]> = {
  ".png": ["png"],
  ".jpg": ["jpg"],
  ".jpeg": ["jpg"],
  ".gif": ["gif"],
  ".webp": ["webp"],
  ".pdf": ["pdf"],
  ".zip": ["zip"],
  ".gz": ["gz"],
  ".mp3": ["mp3"],
  ".mp4": ["mp4"],
  ".wav": ["wav"],
  ".xlsx": ["xlsx"],
  ".docx": ["docx"],
};

export type Verdict = { mimeType: string } | { reason: string };

/** Valid UTF-8 without NUL bytes is text. */
function isText(content: Buffer): boolean {
  if (content.includes(0)) return false;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(content);
    return true;
  } catch {
    return false;
  }
}

/** The type of `content` if it may be an artifact named `name`, or why not. */
export async function judgeArtifact(
  name: string,
  content: Buffer,
  allowed: readonly string[],
): Promise<Verdict> {
  const ext = extname(name).toLowerCase();
  const sniffed = await fileTypeFromBuffer(content);
  let mimeType: string;
  if (sniffed) {
    const claimed = BINARY_EXTENSIONS[ext];
    const textual = TEXT_TYPES[ext] !== undefined || ext === ".txt";
    if ((claimed && !claimed.includes(sniffed.ext)) || textual)
      return { reason: `the name says ${ext} but the content is ${sniffed.mime}` };
    mimeType = sniffed.mime;
  } else if (isText(content)) {
    if (BINARY_EXTENSIONS[ext]) return { reason: `the name says ${ext} but the content is text` };
    mimeType = TEXT_TYPES[ext] ?? "text/plain";
    if (mimeType === "image/svg+xml" && !/<svg[\s>]/i.test(content.toString("utf8")))
      return { reason: "the name says .svg but the content is not SVG" };
  } else return { reason: "unrecognised binary content" };
  if (!allowed.includes(mimeType)) return { reason: `type ${mimeType} is not allowed` };
  return { mimeType };
}

/** Artifact names: relative paths of plain characters, no dot segments. */
export function artifactNameProblem(name: string): string | null {
  if (name.length === 0 || name.length > 255) return "name must be 1-255 characters";
  if (!/^[A-Za-z0-9._\-/ ]+$/.test(name))
    return "name has characters outside A-Z a-z 0-9 . _ - / space";
  if (name.split("/").some((part) => part === "" || part === "." || part === ".."))
    return "name has an empty, . or .. segment";
  return null;
}
