/**
 * Searching and counting the audit trail (the dashboard's security feed and
 * GET /api/sandbox/audit): one query builder for both stores, newest first,
 * paged by event id so a page never shifts while new events arrive.
 */
import { toAuditEvent, type AuditEvent, type EventLevel, type EventRow } from "./records.js";

export interface EventFilter {
  events?: readonly string[] | undefined;
  userId?: string | undefined;
  levels?: readonly EventLevel[] | undefined;
  executionId?: string | undefined;
  /** timestamp ≥ fromMs */
  fromMs?: number | undefined;
  /** timestamp < toMs */
  toMs?: number | undefined;
  /** Only events older than this id (the last id of the previous page). */
  beforeId?: number | undefined;
  limit: number;
}

export interface CountFilter {
  fromMs: number;
  toMs: number;
  bucketMs: number;
  events?: readonly string[] | undefined;
}

export type StoredAuditEvent = AuditEvent & { id: number };

export interface CountBucket {
  startMs: number;
  counts: Record<string, number>;
}

type Dialect = "sqlite" | "postgres";

/** Builds WHERE clauses whose placeholders are numbered as arguments are added. */
export class Where {
  readonly clauses: string[] = [];
  readonly args: (string | number)[] = [];
  constructor(private readonly dialect: Dialect) {}
  p(value: string | number): string {
    this.args.push(value);
    return this.dialect === "sqlite" ? "?" : `$${this.args.length}`;
  }
  add(clause: string): void {
    this.clauses.push(clause);
  }
  in(column: string, values: readonly string[] | undefined): void {
    if (values?.length) this.add(`${column} IN (${values.map((v) => this.p(v)).join(", ")})`);
  }
  get sql(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(" AND ")}` : "";
  }
}

export function searchQuery(
  f: EventFilter,
  dialect: Dialect,
): { sql: string; args: (string | number)[] } {
  const w = new Where(dialect);
  w.in("event", f.events);
  w.in("level", f.levels);
  if (f.userId !== undefined) w.add(`user_id = ${w.p(f.userId)}`);
  if (f.executionId !== undefined) w.add(`execution_id = ${w.p(f.executionId)}`);
  if (f.fromMs !== undefined) w.add(`timestamp >= ${w.p(f.fromMs)}`);
  if (f.toMs !== undefined) w.add(`timestamp < ${w.p(f.toMs)}`);
  if (f.beforeId !== undefined) w.add(`id < ${w.p(f.beforeId)}`);
  const sql = `SELECT * FROM events ${w.sql} ORDER BY id DESC LIMIT ${w.p(f.limit)}`;
  return { sql, args: w.args };
}

export function countQuery(
  f: CountFilter,
  dialect: Dialect,
): { sql: string; args: (string | number)[] } {
  const w = new Where(dialect);
  const bucket = `(timestamp - ${w.p(f.fromMs)}) / ${w.p(f.bucketMs)}`;
  w.add(`timestamp >= ${w.p(f.fromMs)}`);
  w.add(`timestamp < ${w.p(f.toMs)}`);
  w.in("event", f.events);
  return {
    sql: `SELECT ${bucket} AS b, event, COUNT(*) AS n FROM events ${w.sql} GROUP BY b, event`,
    args: w.args,
  };
}

export function toStoredEvent(row: EventRow & { id: number }): StoredAuditEvent {
  return { id: Number(row.id), ...toAuditEvent(row) };
}

/** Every bucket of the range, empty ones included, in time order. */
export function toBuckets(
  f: CountFilter,
  rows: readonly { b: number; event: string; n: number }[],
): CountBucket[] {
  const buckets: CountBucket[] = [];
  for (let start = f.fromMs; start < f.toMs; start += f.bucketMs)
    buckets.push({ startMs: start, counts: {} });
  for (const r of rows) {
    const bucket = buckets[Math.floor(Number(r.b))];
    if (bucket) bucket.counts[r.event] = (bucket.counts[r.event] ?? 0) + Number(r.n);
  }
  return buckets;
}
