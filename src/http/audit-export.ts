/**
 * The audit search's exports. A CSV opened in a spreadsheet runs any cell that
 * starts like a formula, and audit cells hold text an attacker chose (a
 * program's egress host name, a refused request's route): such cells are
 * prefixed with an apostrophe (OWASP's rule), and every cell is quoted.
 */
import type { FastifyReply } from "fastify";
import type { StoredAuditEvent } from "../store/audit-search.js";

const COLUMNS = ["id", "timestamp", "level", "event", "userId", "executionId", "message", "data"];
/** What a spreadsheet takes as the start of a formula (or of a DDE command). */
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(value: string): string {
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return `"${safe.replaceAll('"', '""')}"`;
}

export function toCsv(events: readonly StoredAuditEvent[]): string {
  const lines = [COLUMNS.join(",")];
  for (const e of events)
    lines.push(
      [
        String(e.id),
        e.timestamp,
        e.level,
        e.event,
        e.userId ?? "",
        e.executionId ?? "",
        e.message,
        e.data ? JSON.stringify(e.data) : "",
      ]
        .map(csvCell)
        .join(","),
    );
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
