/**
 * The `warden` callback body: the execution as GET /v1/executions/:id shows
 * it, output included. The output is what the store kept, so it is already
 * bounded by the run's outputBytes limits.
 */
import { blankResult } from "../contract/result.js";
import { executionView } from "../contract/execution-view.js";
import type { CallbackRenderer } from "./types.js";

export const wardenCallback: CallbackRenderer = (record) => {
  const base = record.result ?? blankResult(record.id, record.status);
  return {
    method: "POST",
    contentType: "application/json",
    body: JSON.stringify(executionView(base, record)),
  };
};

/** The event every delivery names in `Warden-Event`. */
export const EXECUTION_FINISHED_EVENT = "execution.finished";
