/**
 * What an HTTP route hands to runCode besides the request: who asks, and a
 * signal for "the client is gone".
 */
import type { FastifyReply } from "fastify";
import type { RunActor } from "../executions/run-code.js";
import { hasScope, type Actor } from "./auth.js";

/** The authenticated caller as runCode sees it. */
export function runActor(actor: Actor): RunActor {
  return {
    userId: actor.userId,
    mayDelegate: hasScope(actor, "delegate"),
    keyId: actor.key?.id,
    policy: actor.key?.policy,
    networkAllow: actor.key?.networkAllow,
    isolation: actor.key ?? undefined,
  };
}

/**
 * Aborts when the connection closes before the answer is written. A route
 * that waits for a run passes it on, and the run is killed: a client that
 * hangs up leaves no sandbox running for nobody.
 */
export function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}
