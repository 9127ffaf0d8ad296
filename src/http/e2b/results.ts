/**
 * A cell's rich results as E2B's code interpreter shows them: a MIME bundle
 * becomes one `result` line whose fields are named by format (`text`, `html`,
 * `png`...), and a cell's statuses and refusals become `error` lines. Wire
 * facts only (docs/e2b.md); the SDK parses these lines itself.
 */
import type { CellResult, RichResult } from "../../sessions/types.js";

/** MIME types with a field of their own in E2B's Result; any other keeps its MIME name. */
const FIELDS: Record<string, string> = {
  "text/plain": "text",
  "text/html": "html",
  "text/markdown": "markdown",
  "image/svg+xml": "svg",
  "image/png": "png",
  "image/jpeg": "jpeg",
  "application/pdf": "pdf",
  "text/latex": "latex",
  "application/json": "json",
  "application/javascript": "javascript",
  "e2b/data": "data",
  "e2b/chart": "chart",
};

/** Deepest nesting a `json` value may have before it is passed on as text. */
const MAX_JSON_DEPTH = 64;

/**
 * The nesting depth of JSON text, counted without parsing it. A kernel's
 * `application/json` can be 4 MiB of `[[[[…`: JSON.parse takes that, but
 * writing the object back out recurses once per level and would overflow
 * the stack, so such a value never becomes an object here.
 */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** `application/json` as the object E2B gives back, or null when it is not one we can pass on. */
function jsonValue(text: string): unknown {
  if (jsonDepth(text) > MAX_JSON_DEPTH) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** A repr's outer quotes go, as E2B's server does: `'abc'` is shown as abc. */
export function plainText(text: string): string {
  const q = text[0];
  return text.length >= 2 && (q === "'" || q === '"') && text.endsWith(q)
    ? text.slice(1, -1)
    : text;
}

/** One rich result as an E2B `result` line (without its newline). */
export function resultLine(r: RichResult): Record<string, unknown> {
  const line: Record<string, unknown> = { type: "result" };
  for (const [mime, value] of Object.entries(r.data)) {
    const field = Object.hasOwn(FIELDS, mime) ? FIELDS[mime]! : mime;
    if (field === "text") line.text = plainText(value);
    else if (field === "json") {
      const parsed = jsonValue(value);
      // Not an object we can pass on: kept as text, under its MIME name (Result.extra).
      if (parsed === null) line[mime] = value;
      else line.json = parsed;
    } else line[field] = value;
  }
  line.is_main_result = r.isMainResult;
  return line;
}

export interface ErrorLine {
  type: "error";
  name: string;
  value: string;
  traceback: string;
}

export function errorLine(name: string, value: string, traceback = ""): ErrorLine {
  return { type: "error", name, value, traceback };
}

/**
 * The `error` line a finished cell ends with, if any: the kernel's own error
 * (ZeroDivisionError...), else what Warden's limits did to it. E2B has no
 * statuses, so a limit shows as an error the SDK puts in `execution.error`.
 */
export function cellErrorLine(cell: CellResult, timeoutSeconds: number): ErrorLine | null {
  const own = cell.error;
  switch (cell.status) {
    case "timeout":
      return errorLine(
        "TimeoutError",
        own?.name === "TimeoutError" || !own
          ? `the cell ran past its ${timeoutSeconds} s limit and was interrupted`
          : `${own.name}: ${own.value} (the cell ran past its ${timeoutSeconds} s limit)`,
        own?.traceback ?? "",
      );
    case "memory_limit":
      return errorLine(
        "MemoryLimit",
        own?.value ?? "the cell ran out of the session's memory limit",
        own?.traceback ?? "",
      );
    case "output_limit":
      // The output was cut at the session's limit; the cell itself may have ended well.
      return own
        ? errorLine(own.name, own.value, own.traceback)
        : errorLine(
            "OutputLimit",
            "the cell wrote more than the session's output limit (limits.outputBytes); the rest was cut",
          );
    case "completed":
    case "failed":
    case "killed":
      return own ? errorLine(own.name, own.value, own.traceback) : null;
  }
}
