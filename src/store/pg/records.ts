/**
 * Execution records and audit events in PostgreSQL: the same rows and codecs
 * as SQLite (src/store/sqlite/records.ts). Output is `bytea` (the output
 * codec's bytes), so a NUL or any other byte a program wrote round-trips.
 */
import type pg from "pg";
import type { ExecutionResult } from "../../contract/result.js";
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
  type RecordRow,
} from "../records.js";
import type { Events, NewRecord, RecordStore } from "../store.js";
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
import { EventWriter, insertEvents } from "./events.js";
import { query, transaction, type Queryable } from "./pool.js";
import { countFinished } from "./usage.js";

export class PgRecordStore implements RecordStore {
  private readonly writer: EventWriter;
  /** The last write about each execution still in flight: the next one waits for it. */
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly pool: pg.Pool) {
    this.writer = new EventWriter(pool);
  }

  event(e: NewEvent): Promise<void> {
    return this.writer.write(e);
  }

  /** Resolves once every event and record write made so far has reached the database. */
  async flushed(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
    await this.writer.flushed();
  }

  /** Runs the writes about one execution one after another, in call order. */
  private inOrder(id: string, write: () => Promise<void>): Promise<void> {
    const before = this.inFlight.get(id);
    const next = before ? before.catch(() => undefined).then(write) : write();
    this.inFlight.set(id, next);
    const forget = (): void => {
      if (this.inFlight.get(id) === next) this.inFlight.delete(id);
    };
    next.then(forget, forget);
    return next;
  }

  queued(r: NewRecord, events?: Events): Promise<void> {
    const digest = digestFiles(r.files);
    const startedAt = r.startedAt ?? null;
    return this.inOrder(r.id, () =>
      transaction(this.pool, async (client) => {
        await query(
          client,
          `INSERT INTO executions (id, user_id, key_id, source, language, status, code_sha256, code_bytes, limits, created_at, started_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
          [
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
          ],
        );
        await insertEvents(client, eventList(events));
      }),
    );
  }

  started(id: string, at: number, events?: Events): Promise<void> {
    return this.inOrder(id, () =>
      transaction(this.pool, async (client) => {
        await query(
          client,
          "UPDATE executions SET status = 'running', started_at = $1 WHERE id = $2",
          [at, id],
        );
        await insertEvents(client, eventList(events));
      }),
    );
  }

  finished(id: string, result: ExecutionResult, at: number, events?: Events): Promise<void> {
    const { rest, output } = splitOutput(result);
    return this.inOrder(id, () =>
      transaction(this.pool, async (client) => {
        // Counted in the same transaction as the final state: once, never twice.
        await countFinished(client, id, result, at);
        await query(
          client,
          "UPDATE executions SET status = $1, result = $2, finished_at = $3, request = NULL WHERE id = $4",
          [result.status, JSON.stringify(rest), at, id],
        );
        for (const [stream, text] of output)
          await query(
            client,
            `INSERT INTO execution_output (execution_id, stream, data) VALUES ($1, $2, $3)
             ON CONFLICT (execution_id, stream) DO UPDATE SET data = excluded.data`,
            [id, stream, encodeOutput(text)],
          );
        await insertEvents(client, eventList(events));
      }),
    );
  }

  private async output(on: Queryable, id: string): Promise<{ stream: string; data: Buffer }[]> {
    const { rows } = await query<{ stream: string; data: Buffer }>(
      on,
      "SELECT stream, data FROM execution_output WHERE execution_id = $1",
      [id],
    );
    return rows;
  }

  async withOutput(id: string, result: ExecutionResult): Promise<ExecutionResult> {
    return putOutput(result, await this.output(this.pool, id));
  }

  async get(id: string, withOutput = true): Promise<ExecutionRecord | null> {
    const { rows } = await query<RecordRow>(this.pool, "SELECT * FROM executions WHERE id = $1", [
      id,
    ]);
    const row = rows[0];
    if (!row) return null;
    const record = toRecord(row);
    if (record.result && withOutput)
      record.result = putOutput(record.result, await this.output(this.pool, id));
    return record;
  }

  async outputBytes(id: string): Promise<number> {
    const { rows } = await query<{ bytes: number | null }>(
      this.pool,
      "SELECT SUM(length(data)) AS bytes FROM execution_output WHERE execution_id = $1",
      [id],
    );
    return rows[0]?.bytes ?? 0;
  }

  async list(filter: ListFilter): Promise<ListedRecord[]> {
    const { sql, args } = listQuery(filter, "postgres");
    return (await query<RecordRow>(this.pool, sql, args)).rows.map(toListed);
  }

  async events(executionId: string, limit = 1000): Promise<AuditEvent[]> {
    await this.writer.flushed();
    const { rows } = await query<EventRow>(
      this.pool,
      "SELECT * FROM events WHERE execution_id = $1 ORDER BY id LIMIT $2",
      [executionId, limit],
    );
    return rows.map(toAuditEvent);
  }

  /**
   * Records left queued or running end as `error`. Only for a node that is the
   * database's sole user: in a cluster, other nodes' runs are live (the
   * reaper ends those of dead workers instead).
   */
  async failOrphans(): Promise<string[]> {
    return transaction(this.pool, async (client) => {
      const { rows } = await query<{ id: string }>(
        client,
        "SELECT id FROM executions WHERE status IN ('queued', 'running') FOR UPDATE",
      );
      const now = Date.now();
      for (const { id } of rows)
        await query(
          client,
          "UPDATE executions SET status = 'error', finished_at = $1, result = $2, request = NULL WHERE id = $3",
          [now, JSON.stringify(orphanResult(id)), id],
        );
      await insertEvents(
        client,
        rows.map(({ id }) => ({
          executionId: id,
          level: "warn" as const,
          event: "orphaned",
          message: ORPHAN_MESSAGE,
        })),
      );
      return rows.map((r) => r.id);
    });
  }

  async expire(retentionMs: number): Promise<{ executions: number; events: number }> {
    const before = Date.now() - retentionMs;
    const old = "created_at < $1 AND status NOT IN ('queued', 'running')";
    const executions = await transaction(this.pool, async (client) => {
      await query(
        client,
        `DELETE FROM execution_output WHERE execution_id IN (SELECT id FROM executions WHERE ${old})`,
        [before],
      );
      return (await query(client, `DELETE FROM executions WHERE ${old}`, [before])).rowCount ?? 0;
    });
    const events =
      (await query(this.pool, "DELETE FROM events WHERE timestamp < $1", [before])).rowCount ?? 0;
    return { executions, events };
  }

  async searchEvents(filter: EventFilter): Promise<StoredAuditEvent[]> {
    await this.writer.flushed();
    const { sql, args } = searchQuery(filter, "postgres");
    return (await query<EventRow & { id: number }>(this.pool, sql, args)).rows.map(toStoredEvent);
  }

  async countEvents(filter: CountFilter): Promise<CountBucket[]> {
    await this.writer.flushed();
    const { sql, args } = countQuery(filter, "postgres");
    const { rows } = await query<{ b: number; event: string; n: number }>(this.pool, sql, args);
    return toBuckets(filter, rows);
  }
}
