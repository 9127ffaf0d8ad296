/**
 * Execution records and audit events. Records follow the lifecycle
 * (queued → running → final); events are the audit trail, one row each,
 * readable through the admin logs API. Both expire after the retention.
 */
import { createHash } from "node:crypto";
import { blankResult, type ExecutionResult, type ExecutionStatus } from "../contract/result.js";
import { SandboxLimitsSchema, type SandboxLimits } from "../contract/limits.js";
import type { Db } from "./database.js";
import { decodeOutput, encodeOutput } from "./output-codec.js";

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

interface RecordRow {
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

interface EventRow {
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
function parseResult(text: string): ExecutionResult {
  const result = JSON.parse(text) as ExecutionResult;
  result.rejectedArtifacts ??= [];
  return result;
}

function toRecord(row: RecordRow): ExecutionRecord {
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

type OutputName = "stdout" | "stderr" | "compile.stdout" | "compile.stderr";

/** The result without its output (kept as bytes in execution_output), and that output. */
function splitOutput(result: ExecutionResult): {
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

export class RecordStore {
  private readonly insertEvent;
  private readonly insertRecord;
  private readonly markStarted;
  private readonly markFinished;
  private readonly insertOutput;
  private readonly selectOutput;
  private readonly selectOutputBytes;
  private readonly selectRecord;

  constructor(private readonly db: Db) {
    this.insertEvent = db.prepare(
      "INSERT INTO events (timestamp, execution_id, user_id, level, event, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.insertRecord = db.prepare(
      `INSERT INTO executions (id, user_id, key_id, source, language, status, code_sha256, code_bytes, limits, created_at, started_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.markStarted = db.prepare(
      "UPDATE executions SET status = 'running', started_at = ? WHERE id = ?",
    );
    this.markFinished = db.prepare(
      "UPDATE executions SET status = ?, result = ?, finished_at = ? WHERE id = ?",
    );
    this.insertOutput = db.prepare<[string, string, Buffer]>(
      "INSERT OR REPLACE INTO execution_output (execution_id, stream, data) VALUES (?, ?, ?)",
    );
    this.selectOutput = db.prepare<[string], { stream: OutputName; data: Buffer }>(
      "SELECT stream, data FROM execution_output WHERE execution_id = ?",
    );
    this.selectRecord = db.prepare<[string], RecordRow>("SELECT * FROM executions WHERE id = ?");
    this.selectOutputBytes = db.prepare<[string], { bytes: number | null }>(
      "SELECT SUM(length(data)) AS bytes FROM execution_output WHERE execution_id = ?",
    );
  }

  event(e: NewEvent): void {
    this.insertEvent.run(
      Date.now(),
      e.executionId ?? null,
      e.userId ?? null,
      e.level,
      e.event,
      e.message,
      e.data ? JSON.stringify(e.data) : null,
    );
  }

  /**
   * Runs `fn` as one transaction: what it writes (records, events) commits
   * together with one write to the WAL, or not at all. Inside another
   * transaction it simply joins it.
   */
  atomically<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.db.transaction(fn)();
  }

  /** A new record: `queued`, or `running` since `startedAt` when it started at once. */
  queued(r: {
    id: string;
    userId: string;
    keyId: string | null;
    source: string;
    language: string;
    files: readonly { path: string; content: string | Buffer }[];
    limits: SandboxLimits;
    createdAt: number;
    startedAt?: number | null | undefined;
  }): void {
    const digest = digestFiles(r.files);
    const startedAt = r.startedAt ?? null;
    this.insertRecord.run(
      r.id,
      r.userId,
      r.keyId,
      r.source,
      r.language,
      startedAt === null ? "queued" : "running",
      digest.sha256,
      digest.bytes,
      JSON.stringify(r.limits),
      r.createdAt,
      startedAt,
    );
  }

  started(id: string, at: number): void {
    this.markStarted.run(at, id);
  }

  /** Stores the final result; its output as bytes of at most what the program wrote. */
  finished(id: string, result: ExecutionResult, at: number): void {
    const { rest, output } = splitOutput(result);
    this.atomically(() => {
      this.markFinished.run(result.status, JSON.stringify(rest), at, id);
      for (const [stream, text] of output) this.insertOutput.run(id, stream, encodeOutput(text));
    });
  }

  /** A stored result with its output put back (records from before the split hold it inline). */
  withOutput(id: string, result: ExecutionResult): ExecutionResult {
    for (const { stream, data } of this.selectOutput.all(id)) {
      const text = decodeOutput(data);
      if (stream === "stdout") result.stdout = text;
      else if (stream === "stderr") result.stderr = text;
      else if (result.compile)
        result.compile[stream === "compile.stdout" ? "stdout" : "stderr"] = text;
    }
    return result;
  }

  /** A record; its result's output too unless `withOutput` is false (then stdout and stderr are empty). */
  get(id: string, withOutput = true): ExecutionRecord | null {
    const row = this.selectRecord.get(id);
    if (!row) return null;
    const record = toRecord(row);
    if (record.result && withOutput) record.result = this.withOutput(row.id, record.result);
    return record;
  }

  /** How many bytes of output are stored for an execution (what loading them costs). */
  outputBytes(id: string): number {
    return this.selectOutputBytes.get(id)?.bytes ?? 0;
  }

  /** One page of records, newest first; results without their output. */
  list(filter: ListFilter): ListedRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const add = (clause: string, ...values: (string | number)[]): void => {
      where.push(clause);
      args.push(...values);
    };
    if (filter.userId !== undefined) add("user_id = ?", filter.userId);
    if (filter.statuses?.length)
      add(`status IN (${filter.statuses.map(() => "?").join(", ")})`, ...filter.statuses);
    if (filter.fromMs !== undefined) add("created_at >= ?", filter.fromMs);
    if (filter.toMs !== undefined) add("created_at < ?", filter.toMs);
    const before = filter.before;
    if (before)
      add(
        "(created_at < ? OR (created_at = ? AND id < ?))",
        before.createdAt,
        before.createdAt,
        before.id,
      );
    const sql = `SELECT * FROM executions ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
                 ORDER BY created_at DESC, id DESC LIMIT ?`;
    return this.db
      .prepare<(string | number)[], RecordRow>(sql)
      .all(...args, filter.limit)
      .map((row) => {
        const record = toRecord(row);
        if (record.result) record.result = splitOutput(record.result).rest;
        return { ...record, createdAtMs: row.created_at };
      });
  }

  events(executionId: string, limit = 1000): AuditEvent[] {
    return this.db
      .prepare<[string, number], EventRow>(
        "SELECT * FROM events WHERE execution_id = ? ORDER BY id LIMIT ?",
      )
      .all(executionId, limit)
      .map((row) => ({
        timestamp: iso(row.timestamp)!,
        executionId: row.execution_id,
        userId: row.user_id,
        level: row.level as EventLevel,
        event: row.event,
        message: row.message,
        ...(row.data ? { data: JSON.parse(row.data) as Record<string, unknown> } : {}),
      }));
  }

  /** Records left queued or running by a Warden that stopped: they end as `error`. */
  failOrphans(): string[] {
    const ids = this.db
      .prepare<[], { id: string }>(
        "SELECT id FROM executions WHERE status IN ('queued', 'running')",
      )
      .all()
      .map((r) => r.id);
    const now = Date.now();
    const mark = this.db.prepare(
      "UPDATE executions SET status = 'error', finished_at = ?, result = ? WHERE id = ?",
    );
    const lost = {
      code: "INTERNAL" as const,
      message: "Warden stopped while this execution was in progress",
      retryable: true,
    };
    this.db.transaction(() => {
      for (const id of ids) {
        mark.run(now, JSON.stringify(blankResult(id, "error", lost)), id);
        this.event({
          executionId: id,
          level: "warn",
          event: "orphaned",
          message: "Warden stopped while this execution was in progress",
        });
      }
    })();
    return ids;
  }

  /** Deletes records and events older than `retentionMs`. */
  expire(retentionMs: number): { executions: number; events: number } {
    const before = Date.now() - retentionMs;
    const old = "created_at < ? AND status NOT IN ('queued', 'running')";
    const executions = this.db.transaction(() => {
      this.db
        .prepare(
          `DELETE FROM execution_output WHERE execution_id IN (SELECT id FROM executions WHERE ${old})`,
        )
        .run(before);
      return this.db.prepare(`DELETE FROM executions WHERE ${old}`).run(before).changes;
    })();
    const events = this.db.prepare("DELETE FROM events WHERE timestamp < ?").run(before).changes;
    return { executions, events };
  }
}
