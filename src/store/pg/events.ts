/**
 * Audit events into PostgreSQL. `audit()` does not wait for its write, and
 * events must keep their order: they queue here and are written by one
 * writer at a time, many rows per statement. The queue is bounded: with the
 * database away, events past the bound are refused (and logged by the
 * trail) rather than held in memory without end.
 */
import type pg from "pg";
import type { NewEvent } from "../records.js";
import { query, type Queryable } from "./pool.js";

/** Events waiting for the database at most; more are refused. */
export const MAX_PENDING_EVENTS = 10_000;
/** Rows per INSERT: 7 parameters each, far below PostgreSQL's 65 535. */
const BATCH = 500;

/** Writes events in order; `times` (epoch ms, one per event) default to now. */
export async function insertEvents(
  on: Queryable,
  events: readonly NewEvent[],
  times?: readonly number[],
): Promise<void> {
  const now = Date.now();
  for (let start = 0; start < events.length; start += BATCH) {
    const batch = events.slice(start, start + BATCH);
    const params: unknown[] = [];
    const rows = batch.map((e, i) => {
      const at = params.length;
      params.push(
        times?.[start + i] ?? now,
        e.executionId ?? null,
        e.userId ?? null,
        e.level,
        e.event,
        e.message,
        e.data ? JSON.stringify(e.data) : null,
      );
      return `(${Array.from({ length: 7 }, (_, i) => `$${at + i + 1}`).join(", ")})`;
    });
    await query(
      on,
      `INSERT INTO events (timestamp, execution_id, user_id, level, event, message, data) VALUES ${rows.join(", ")}`,
      params,
    );
  }
}

interface Pending {
  event: NewEvent;
  /** When it was audited, not when it reached the database. */
  at: number;
  done: (error?: Error) => void;
}

export class EventWriter {
  private pending: Pending[] = [];
  private writing: Promise<void> | undefined;

  constructor(private readonly pool: pg.Pool) {}

  write(event: NewEvent): Promise<void> {
    if (this.pending.length >= MAX_PENDING_EVENTS)
      return Promise.reject(
        new Error(`more than ${MAX_PENDING_EVENTS} audit events wait for the database; dropped`),
      );
    const written = new Promise<void>((resolve, reject) => {
      this.pending.push({
        event,
        at: Date.now(),
        done: (error) => (error ? reject(error) : resolve()),
      });
    });
    this.writing ??= this.drain();
    return written;
  }

  /** Resolves once every event queued before the call has been written (or failed). */
  async flushed(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    // Let the current synchronous step queue its events first: one statement holds them all.
    await Promise.resolve();
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, BATCH);
      try {
        await insertEvents(
          this.pool,
          batch.map((p) => p.event),
          batch.map((p) => p.at),
        );
        for (const p of batch) p.done();
      } catch (error) {
        for (const p of batch) p.done(error as Error);
      }
    }
    this.writing = undefined;
  }
}
