/**
 * The audit search's exports. A CSV opened in a spreadsheet runs any cell that
 * starts like a formula, and audit cells hold text an attacker chose (a
 * program's egress host name, a refused request's route): such cells are
 * prefixed with an apostrophe (OWASP's rule) by the usage export's escaper,
 * the one CSV cell rule of the API.
 */
import type { FastifyReply } from "fastify";
import type { StoredAuditEvent } from "../store/audit-search.js";
import { csvCell } from "../usage/export.js";

const COLUMNS = [
  "id",
  "timestamp",
  "level",
  "event",
  "userId",
  "executionId",
  "message",
  "data",
] as const;

export function toCsv(events: readonly StoredAuditEvent[]): string {
  const lines = [COLUMNS.join(",")];
  for (const e of events) lines.push(COLUMNS.map((c) => csvCell(e[c])).join(","));
  return `${lines.join("\r\n")}\r\n`;
}

export function toNdjson(events: readonly StoredAuditEvent[]): string {
  return events.map((e) => `${JSON.stringify(e)}\n`).join("");
}

/** Answers an export as a download; `truncated`: there were more events than the bound. */
export function sendExport(
  reply: FastifyReply,
  format: "csv" | "ndjson",
  events: readonly StoredAuditEvent[],
  truncated: boolean,
): FastifyReply {
  return reply
    .type(format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson")
    .header("Content-Disposition", `attachment; filename="warden-audit.${format}"`)
    .header("X-Export-Truncated", String(truncated))
    .send(Buffer.from(format === "csv" ? toCsv(events) : toNdjson(events)));
}
