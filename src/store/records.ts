/**
 * Execution records and audit events. Records follow the lifecycle
 * (queued → running → final); events are the audit trail, one row each,
 * readable through the admin logs API. Both expire after the retention.
 */
import { createHash } from "node:crypto";
import { blankResult, type ExecutionResult, type ExecutionStatus } from "../contract/result.js";
import { SandboxLimitsSchema, type SandboxLimits } from "../contract/limits.js";
import { decodeOutput } from "./output-codec.js";

export type EventLevel = "debug" | "info" | "warn" | "error";

export interface AuditEvent {
  timestamp: string;
  executionId: string | null;
  userId: string | null;
  level: EventLevel;
  event: string;
  message: string;
  data?: Record<string, unknown>;
}

export interface NewEvent {
  executionId?: string | null | undefined;
  userId?: string | null | undefined;
  level: EventLevel;
  event: string;
  message: string;
  data?: Record<string, unknown> | undefined;
}

export interface ExecutionRecord {
  id: string;
  userId: string;
  keyId: string | null;
  source: string;
  language: string;
  status: ExecutionStatus;
  codeSha256: string;
  codeBytes: number;
  limits: SandboxLimits;
  result: ExecutionResult | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface RecordRow {
  id: string;
  user_id: string;
  key_id: string | null;
  source: string;
  language: string;
  status: string;
  code_sha256: string;
  code_bytes: number;
  limits: string;
  result: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface EventRow {
  timestamp: number;
  execution_id: string | null;
  user_id: string | null;
  level: string;
  event: string;
  message: string;
  data: string | null;
}

/** Milliseconds since the epoch as ISO 8601 (null stays null). */
export const iso = (ms: number | null): string | null =>
  ms === null ? null : new Date(ms).toISOString();

export function digestFiles(files: readonly { path: string; content: string | Buffer }[]): {
  sha256: string;
  bytes: number;
} {
  const hash = createHash("sha256");
  let bytes = 0;
  for (const f of files) {
    hash.update(f.path).update("\0").update(f.content).update("\0");
    bytes += Buffer.byteLength(f.content);
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** A stored result; one stored before a field existed gets that field's empty value. */
export function parseResult(text: string): ExecutionResult {
  const result = JSON.parse(text) as ExecutionResult;
  result.rejectedArtifacts ??= [];
  return result;
}

export function toRecord(row: RecordRow): ExecutionRecord {
  return {
    id: row.id,
    userId: row.user_id,
    keyId: row.key_id,
    source: row.source,
    language: row.language,
    status: row.status as ExecutionStatus,
    codeSha256: row.code_sha256,
    codeBytes: row.code_bytes,
    limits: SandboxLimitsSchema.parse(JSON.parse(row.limits)),
    result: row.result ? parseResult(row.result) : null,
    createdAt: iso(row.created_at)!,
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
  };
}

export type OutputName = "stdout" | "stderr" | "compile.stdout" | "compile.stderr";

/** The result without its output (kept as bytes in execution_output), and that output. */
export function splitOutput(result: ExecutionResult): {
  rest: ExecutionResult;
  output: [OutputName, string][];
} {
  const output: [OutputName, string][] = [
    ["stdout", result.stdout],
    ["stderr", result.stderr],
  ];
  let compile = result.compile;
  if (compile) {
    output.push(["compile.stdout", compile.stdout], ["compile.stderr", compile.stderr]);
    compile = { ...compile, stdout: "", stderr: "" };
  }
  const rest = { ...result, stdout: "", stderr: "", compile };
  return { rest, output: output.filter(([, text]) => text.length > 0) };
}

/** Query of `GET /v1/executions`: newest first, `before` = the last row of the previous page. */
export interface ListFilter {
  userId?: string | undefined;
  /** Only these executions (GET /v1/executions?ids=; at most 100, checked by the route). */
  ids?: readonly string[] | undefined;
  statuses?: readonly ExecutionStatus[] | undefined;
  /** createdAt ≥ fromMs */
  fromMs?: number | undefined;
  /** createdAt < toMs */
  toMs?: number | undefined;
  before?: { createdAt: number; id: string } | undefined;
  limit: number;
}

/** A record as listed: its result without the program's output (never loaded for a list). */
export type ListedRecord = ExecutionRecord & { createdAtMs: number };

export function toAuditEvent(row: EventRow): AuditEvent {
  return {
    timestamp: iso(row.timestamp)!,
    executionId: row.execution_id,
    userId: row.user_id,
    level: row.level as EventLevel,
    event: row.event,
    message: row.message,
    ...(row.data ? { data: JSON.parse(row.data) as Record<string, unknown> } : {}),
  };
}

/** A stored result with its output put back (records from before the split hold it inline). */
export function putOutput(
  result: ExecutionResult,
  rows: readonly { stream: string; data: Buffer }[],
): ExecutionResult {
  for (const { stream, data } of rows) {
    const text = decodeOutput(data);
    if (stream === "stdout") result.stdout = text;
    else if (stream === "stderr") result.stderr = text;
    else if (result.compile)
      result.compile[stream === "compile.stdout" ? "stdout" : "stderr"] = text;
  }
  return result;
}

/** The WHERE clause and arguments of a listing; `$` numbers PostgreSQL's placeholders. */
export function listQuery(
  filter: ListFilter,
  dialect: "sqlite" | "postgres",
): { sql: string; args: (string | number)[] } {
  const where: string[] = [];
  const args: (string | number)[] = [];
  const add = (clause: (p: () => string) => string, ...values: (string | number)[]): void => {
    // Placeholders are numbered as they are made, so arguments follow in the same order.
    let i = 0;
    where.push(
      clause(() => {
        const at = dialect === "sqlite" ? "?" : `$${args.length + i + 1}`;
        i++;
        return at;
      }),
    );
    args.push(...values);
  };
  if (filter.userId !== undefined) add((p) => `user_id = ${p()}`, filter.userId);
  if (filter.ids?.length)
    add((p) => `id IN (${filter.ids!.map(() => p()).join(", ")})`, ...filter.ids);
  if (filter.statuses?.length)
    add((p) => `status IN (${filter.statuses!.map(() => p()).join(", ")})`, ...filter.statuses);
  if (filter.fromMs !== undefined) add((p) => `created_at >= ${p()}`, filter.fromMs);
  if (filter.toMs !== undefined) add((p) => `created_at < ${p()}`, filter.toMs);
  const before = filter.before;
  if (before)
    add(
      (p) => `(created_at < ${p()} OR (created_at = ${p()} AND id < ${p()}))`,
      before.createdAt,
      before.createdAt,
      before.id,
    );
  const limit = dialect === "sqlite" ? "?" : `$${args.length + 1}`;
  args.push(filter.limit);
  const sql = `SELECT * FROM executions ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
                 ORDER BY created_at DESC, id DESC LIMIT ${limit}`;
  return { sql, args };
}

/** A listed record: its result without the program's output. */
export function toListed(row: RecordRow): ListedRecord {
  const record = toRecord(row);
  if (record.result) record.result = splitOutput(record.result).rest;
  return { ...record, createdAtMs: row.created_at };
}

export const ORPHAN_MESSAGE = "Warden stopped while this execution was in progress";

/** The result of a record a stopped Warden left queued or running. */
export function orphanResult(id: string): ExecutionResult {
  return blankResult(id, "error", { code: "INTERNAL", message: ORPHAN_MESSAGE, retryable: true });
}

/** One event or several, as a list. */
export function eventList(events: NewEvent | readonly NewEvent[] | undefined): readonly NewEvent[] {
  if (events === undefined) return [];
  return Array.isArray(events) ? (events as readonly NewEvent[]) : [events as NewEvent];
}
