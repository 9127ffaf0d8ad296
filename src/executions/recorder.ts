/**
 * Follows the scheduler's lifecycle events into the execution records and the
 * audit trail. The scheduler and the service only say what happened; this
 * decides what is kept of it.
 */
import type { Audit } from "../audit/trail.js";
import type { Logger } from "../audit/logger.js";
import type { RecordStore } from "../store/records.js";
import type { LifecycleEvent } from "./scheduler.js";

export function lifecycleRecorder(
  records: RecordStore,
  audit: Audit,
  logger: Logger,
): (event: LifecycleEvent) => void {
  return (event) => {
    switch (event.type) {
      case "queued": {
        const e = event.execution;
        const r = e.request;
        records.queued({
          id: e.id,
          userId: r.userId,
          keyId: r.keyId ?? null,
          source: r.source,
          language: r.language,
          files: r.files,
          limits: r.limits,
          createdAt: e.createdAt,
        });
        audit({
          executionId: e.id,
          userId: r.userId,
          level: "info",
          event: "queued",
          message: `${r.language} execution queued`,
          data: { source: r.source },
        });
        return;
      }
      case "started":
        records.started(event.execution.id, event.execution.startedAt ?? Date.now());
        audit({
          executionId: event.execution.id,
          userId: event.execution.userId,
          level: "info",
          event: "started",
          message: "sandbox started",
        });
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
      case "finished": {
        const { execution, result } = event;
        records.finished(execution.id, result, execution.finishedAt ?? Date.now());
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
        audit({
          executionId: execution.id,
          userId: execution.userId,
          level,
          event: result.status,
          message: `execution ended ${result.status}${why}`,
          data: { exitCode: result.exitCode, signal: result.signal, metrics: result.metrics },
        });
        return;
      }
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
