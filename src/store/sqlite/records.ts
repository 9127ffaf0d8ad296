/**
 * Execution records and audit events in SQLite. Every method does its work
 * synchronously at call time (better-sqlite3), so the single node's writes
 * land in call order, before the returned promise is even awaited.
 */
import type { ExecutionResult } from "../../contract/result.js";
import type { Db } from "../database.js";
import { encodeOutput } from "../output-codec.js";
import {
  digestFiles,
  eventList,
  listQuery,
  orphanResult,
  ORPHAN_MESSAGE,
  putOutput,
  splitOutput,
  toAuditEvent,
  toListed,
  toRecord,
  type AuditEvent,
  type EventRow,
  type ExecutionRecord,
  type ListedRecord,
  type ListFilter,
  type NewEvent,
  type OutputName,
  type RecordRow,
} from "../records.js";
import type { Events, NewRecord, RecordStore } from "../store.js";
import { executionDelta } from "../usage.js";
import type { SqliteUsageStore } from "./usage.js";
import {
  countQuery,
  searchQuery,
  toBuckets,
  toStoredEvent,
  type CountBucket,
  type CountFilter,
  type EventFilter,
  type StoredAuditEvent,
} from "../audit-search.js";

export class SqliteRecordStore implements RecordStore {
  private readonly insertEvent;
  private readonly insertRecord;
  private readonly markStarted;
  private readonly markFinished;
  private readonly insertOutput;
  private readonly selectOutput;
  private readonly selectOutputBytes;
  private readonly selectRecord;
  private readonly selectOwner;

  constructor(
    private readonly db: Db,
    private readonly usage?: SqliteUsageStore,
  ) {
    this.selectOwner = db.prepare<
      [string],
      { user_id: string; key_id: string | null; status: string; started_at: number | null }
    >("SELECT user_id, key_id, status, started_at FROM executions WHERE id = ?");
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

  private writeEvent(e: NewEvent): void {
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
  private atomically<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.db.transaction(fn)();
  }

  async event(e: NewEvent): Promise<void> {
    this.writeEvent(e);
  }

  async queued(r: NewRecord, events?: Events): Promise<void> {
    const digest = digestFiles(r.files);
    const startedAt = r.startedAt ?? null;
    this.atomically(() => {
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
      for (const e of eventList(events)) this.writeEvent(e);
    });
  }

  async started(id: string, at: number, events?: Events): Promise<void> {
    this.atomically(() => {
      this.markStarted.run(at, id);
      for (const e of eventList(events)) this.writeEvent(e);
    });
  }

  /** Stores the final result; its output as bytes of at most what the program wrote. */
  async finished(id: string, result: ExecutionResult, at: number, events?: Events): Promise<void> {
    const { rest, output } = splitOutput(result);
    this.atomically(() => {
      // Counted in the same transaction as the final state: once, never twice.
      const owner = this.usage ? this.selectOwner.get(id) : undefined;
      const delta = owner ? executionDelta(owner, result, at) : null;
      if (delta) this.usage!.addNow(delta);
      this.markFinished.run(result.status, JSON.stringify(rest), at, id);
      for (const [stream, text] of output) this.insertOutput.run(id, stream, encodeOutput(text));
      for (const e of eventList(events)) this.writeEvent(e);
    });
  }

  async withOutput(id: string, result: ExecutionResult): Promise<ExecutionResult> {
    return putOutput(result, this.selectOutput.all(id));
  }

  /** A record; its result's output too unless `withOutput` is false (then stdout and stderr are empty). */
  async get(id: string, withOutput = true): Promise<ExecutionRecord | null> {
    const row = this.selectRecord.get(id);
    if (!row) return null;
    const record = toRecord(row);
    if (record.result && withOutput)
      record.result = putOutput(record.result, this.selectOutput.all(row.id));
    return record;
  }

  async outputBytes(id: string): Promise<number> {
    return this.selectOutputBytes.get(id)?.bytes ?? 0;
  }

  async list(filter: ListFilter): Promise<ListedRecord[]> {
    const { sql, args } = listQuery(filter, "sqlite");
    return this.db
      .prepare<(string | number)[], RecordRow>(sql)
      .all(...args)
      .map(toListed);
  }

  async events(executionId: string, limit = 1000): Promise<AuditEvent[]> {
    return this.db
      .prepare<[string, number], EventRow>(
        "SELECT * FROM events WHERE execution_id = ? ORDER BY id LIMIT ?",
      )
      .all(executionId, limit)
      .map(toAuditEvent);
  }

  /** Records left queued or running by a Warden that stopped: they end as `error`. */
  async failOrphans(): Promise<string[]> {
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
    this.db.transaction(() => {
      for (const id of ids) {
        mark.run(now, JSON.stringify(orphanResult(id)), id);
        this.writeEvent({
          executionId: id,
          level: "warn",
          event: "orphaned",
          message: ORPHAN_MESSAGE,
        });
      }
    })();
    return ids;
  }

  /** Deletes records and events older than `retentionMs`. */
  async expire(retentionMs: number): Promise<{ executions: number; events: number }> {
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

  async searchEvents(filter: EventFilter): Promise<StoredAuditEvent[]> {
    const { sql, args } = searchQuery(filter, "sqlite");
    return this.db
      .prepare<(string | number)[], EventRow & { id: number }>(sql)
      .all(...args)
      .map(toStoredEvent);
  }

  async countEvents(filter: CountFilter): Promise<CountBucket[]> {
    const { sql, args } = countQuery(filter, "sqlite");
    const rows = this.db
      .prepare<(string | number)[], { b: number; event: string; n: number }>(sql)
      .all(...args);
    return toBuckets(filter, rows);
  }
}
