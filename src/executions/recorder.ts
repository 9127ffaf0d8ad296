/**
 * Follows the scheduler's lifecycle events into the execution records and the
 * audit trail. The scheduler and the service only say what happened; this
 * decides what is kept of it.
 *
 * Writes are grouped so a run costs two commits instead of one per statement
 * (the store's compound calls: a record change and its events in one
 * transaction; the store applies one execution's writes in call order):
 * - before the program can start, its record and its `queued` and `started`
 *   events commit together. The scheduler reports `started` synchronously,
 *   before it calls the engine, so the record is on disk before the sandbox
 *   exists: if Warden dies mid-run, the next start finds it `running` and
 *   ends it as `error` (RecordStore.failOrphans), as before. (SQLite writes at
 *   call time; PostgreSQL's writes are asynchronous, and a failure is logged.)
 * - the outcome (status, result, output) and the closing event commit
 *   together, before anyone is told the result: a client never holds a
 *   result that is not on record.
 * An execution that has to wait for room is written when the current
 * synchronous step ends (a microtask, before any I/O or reply), then its start
 * and its end as above.
 */
import { logAuditEvent, type Audit } from "../audit/trail.js";
import type { Logger } from "../audit/logger.js";
import type { ExecutionResult } from "../contract/result.js";
import type { NewEvent } from "../store/records.js";
import type { RecordStore } from "../store/store.js";
import type { Execution } from "./execution.js";
import type { LifecycleEvent } from "./scheduler.js";

export function lifecycleRecorder(
  records: RecordStore,
  audit: Audit,
  logger: Logger,
): (event: LifecycleEvent) => void {
  /** Queued in this synchronous step, not yet written. */
  const unwritten = new Map<string, Execution>();

  /** Its events go to the log now; to the store with the record change (one transaction). */
  const write = (what: string, id: string, events: NewEvent[], store: Promise<void>): void => {
    for (const event of events) logAuditEvent(logger, event);
    store.catch((error: unknown) =>
      logger.error({ err: error, executionId: id }, `execution record not stored (${what})`),
    );
  };

  const queuedEvent = (e: Execution): NewEvent => ({
    executionId: e.id,
    userId: e.request.userId,
    level: "info",
    event: "queued",
    message: `${e.request.language} execution queued`,
    data: { source: e.request.source },
  });

  /** The record with `events`; as `running` when it has already started. */
  const writeQueued = (e: Execution, started: boolean, events: NewEvent[]): void => {
    const r = e.request;
    const record = {
      id: e.id,
      userId: r.userId,
      keyId: r.keyId ?? null,
      source: r.source,
      language: r.language,
      files: r.files,
      limits: r.limits,
      createdAt: e.createdAt,
      startedAt: started ? (e.startedAt ?? Date.now()) : null,
    };
    write("queued", e.id, events, records.queued(record, events));
  };

  /** Writes the record of anything still unwritten (it waits in the queue). */
  const writeWaiting = (): void => {
    if (unwritten.size === 0) return;
    const waiting = [...unwritten.values()];
    unwritten.clear();
    for (const e of waiting) writeQueued(e, false, [queuedEvent(e)]);
  };

  const writeStarted = (e: Execution): void => {
    const first = unwritten.delete(e.id);
    const started: NewEvent = {
      executionId: e.id,
      userId: e.userId,
      level: "info",
      event: "started",
      message: "sandbox started",
    };
    if (first) writeQueued(e, true, [queuedEvent(e), started]);
    else
      write("started", e.id, [started], records.started(e.id, e.startedAt ?? Date.now(), started));
  };

  const writeFinished = (execution: Execution, result: ExecutionResult): void => {
    // Killed or expired before its record was written: write it first.
    const first = unwritten.delete(execution.id);
    const level =
      result.status === "completed" || result.status === "failed"
        ? "info"
        : result.status === "error"
          ? "error"
          : "warn";
    const why = execution.killReason
      ? ` (${execution.killReason})`
      : result.error
        ? `: ${result.error.message}`
        : "";
    if (first) writeQueued(execution, false, [queuedEvent(execution)]);
    const finished: NewEvent = {
      executionId: execution.id,
      userId: execution.userId,
      level,
      event: result.status,
      message: `execution ended ${result.status}${why}`,
      data: { exitCode: result.exitCode, signal: result.signal, metrics: result.metrics },
    };
    write(
      "finished",
      execution.id,
      [finished],
      records.finished(execution.id, result, execution.finishedAt ?? Date.now(), finished),
    );
  };

  return (event) => {
    switch (event.type) {
      case "queued":
        // Most executions start in the same step (then one commit holds both).
        unwritten.set(event.execution.id, event.execution);
        if (unwritten.size === 1) queueMicrotask(writeWaiting);
        return;
      case "started":
        writeStarted(event.execution);
        return;
      case "retried":
        audit({
          executionId: event.execution.id,
          userId: event.execution.userId,
          level: "warn",
          event: "retried",
          message: `attempt ${event.attempt + 1} after a transient failure: ${event.reason}`,
        });
        return;
      case "finished":
        writeFinished(event.execution, event.result);
        return;
      case "rejected":
        audit({
          userId: event.request.userId,
          level: "warn",
          event: "rejected",
          message: event.error.message,
          data: { reason: event.reason },
        });
        logger.debug({ reason: event.reason }, "execution refused");
        return;
    }
  };
}
