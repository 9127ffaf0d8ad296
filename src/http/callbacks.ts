/**
 * What the execution and Judge0 routes do about a callback URL: check it before anything
 * is submitted (a refused URL runs nothing), register the delivery once the
 * execution exists, and nudge the deliverer when the run ends on this node.
 */
import { WardenError } from "../errors.js";
import type { Execution } from "../executions/execution.js";
import type { ExecutionFrontend } from "../executions/frontend.js";
import type { CallbackFormat, Webhooks } from "../webhooks/types.js";
import type { RunActor } from "../executions/run-code.js";

/** The checked form of `url`, or INVALID_REQUEST naming `field`. */
export async function checkCallback(
  webhooks: Webhooks | undefined,
  actor: RunActor,
  url: string,
  field: string,
): Promise<string> {
  if (!webhooks)
    throw new WardenError(
      "INVALID_REQUEST",
      `${field}: callbacks are not available on this server`,
    );
  // Deliveries are signed with the key's secret: a request without a key has none.
  if (!actor.keyId)
    throw new WardenError("INVALID_REQUEST", `${field}: needs a request made with an API key`);
  return webhooks.checkUrl(url, field);
}

/**
 * Records the delivery for a submitted execution. If that fails the
 * execution is killed: a run whose callback was promised but never
 * recorded would end in silence.
 */
export async function registerCallback(
  webhooks: Webhooks,
  service: ExecutionFrontend,
  execution: Execution,
  o: { url: string; actor: RunActor; batchId?: string; format?: CallbackFormat },
): Promise<void> {
  try {
    await webhooks.register({
      executionId: execution.id,
      userId: execution.request.userId,
      keyId: o.actor.keyId ?? null,
      url: o.url,
      format: o.format ?? "warden",
      batchId: o.batchId,
    });
  } catch (error) {
    await service.killExecution(execution.id, "its callback could not be recorded");
    throw error;
  }
  void execution.done.then(() => webhooks.nudge(execution.id));
}
