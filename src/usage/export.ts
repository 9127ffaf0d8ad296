/**
 * Usage exports as CSV or NDJSON, produced row by row (a stream, never one
 * string of the whole export). A CSV cell that a spreadsheet would take for
 * a formula (=, +, -, @, tab, CR first) is prefixed with a quote: a user id
 * such as `=HYPERLINK(...)` or `@SUM(...)` (the id pattern allows `-` and
 * `@`) must arrive as text, never run in the admin's spreadsheet.
 */
import { Readable } from "node:stream";
import { UsageRowSchema, type UsageRow } from "../contract/usage.js";

/** The report row's fields, in its schema's order. */
export const CSV_COLUMNS = UsageRowSchema.keyof().options;

/** One CSV cell: formula-looking text made inert, then quoted as RFC 4180 needs. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return String(value);
  let text = typeof value === "string" ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function* csvLines(rows: readonly UsageRow[]): Generator<string> {
  yield `${CSV_COLUMNS.join(",")}\r\n`;
  for (const r of rows) yield `${CSV_COLUMNS.map((c) => csvCell(r[c])).join(",")}\r\n`;
}

function* ndjsonLines(rows: readonly UsageRow[]): Generator<string> {
  for (const r of rows) yield `${JSON.stringify(r)}\n`;
}

export function exportStream(rows: readonly UsageRow[], format: "csv" | "ndjson"): Readable {
  return Readable.from(format === "csv" ? csvLines(rows) : ndjsonLines(rows), {
    objectMode: false,
  });
}
