/**
 * The audit trail: every event stored with the execution records and written
 * to the structured log, in one call. Made once by the composition root
 * (src/warden.ts) and handed to whatever has something to audit.
 *
 * Callers never wait and never see the store fail: the event is handed to the
 * store at once (SQLite writes it there and then, PostgreSQL queues it in
 * order) and a write that fails is logged, not thrown into whoever audited.
 */
import type { NewEvent } from "../store/records.js";
import type { RecordStore } from "../store/store.js";
import type { Logger } from "./logger.js";

export type Audit = (event: NewEvent) => void;

/** Writes an audit event to the structured log only (its store write is done elsewhere). */
export function logAuditEvent(logger: Logger, event: NewEvent): void {
  // pino drops a disabled level, but only after the caller built the line's object.
  if (!logger.isLevelEnabled(event.level)) return;
  const { level, ...rest } = event;
  logger[level](Object.assign(rest, { audit: true }), event.message);
}

export function auditTrail(records: RecordStore, logger: Logger): Audit {
  const failed = (error: unknown, event: NewEvent): void =>
    logger.error({ err: error, event: event.event }, "audit event not stored");
  return (event) => {
    try {
      records.event(event).catch((error: unknown) => failed(error, event));
    } catch (error) {
      failed(error, event);
    }
    logAuditEvent(logger, event);
  };
}
