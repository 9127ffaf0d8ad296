/**
 * The audit trail: every event stored with the execution records and written
 * to the structured log, in one call. Made once by the composition root
 * (src/warden.ts) and handed to whatever has something to audit.
 */
import type { RecordStore, NewEvent } from "../store/records.js";
import type { Logger } from "./logger.js";

export type Audit = (event: NewEvent) => void;

export function auditTrail(records: RecordStore, logger: Logger): Audit {
  return (event) => {
    records.event(event);
    // pino drops a disabled level, but only after the caller built the line's object.
    if (!logger.isLevelEnabled(event.level)) return;
    const { level, ...rest } = event;
    logger[level](Object.assign(rest, { audit: true }), event.message);
  };
}
