/**
 * An execution as GET /v1/executions/:id shows it (ExecutionViewSchema in
 * src/http/schemas.ts): its result, or the blank one of its status, with the
 * record's own fields. The `warden` callback body is the same view
 * (src/webhooks/render.ts).
 */
import type { ExecutionResult, ExecutionStatus } from "./result.js";

export interface ExecutionViewFields {
  status: ExecutionStatus;
  language: string;
  userId: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export function executionView(
  base: ExecutionResult,
  r: ExecutionViewFields,
): ExecutionResult & ExecutionViewFields {
  return {
    ...base,
    status: r.status,
    language: r.language,
    userId: r.userId,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
  };
}
