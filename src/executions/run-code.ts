/**
 * The one way a client's code is run. REST, MCP and Piston translate their
 * request into `runCode` and its outcome into their answer; none of them has
 * its own copy of the steps below, so none can be the way around one of them
 * (Piston used to skip the static-analysis policy altogether):
 *
 *   1. ownership: the acting user is the key's, or — for a key with the
 *      delegate scope only — the `userId` the request names;
 *   2. policy: the key's (else the server's) static-analysis mode; block mode
 *      refuses here, before anything is queued, and the refusal is audited;
 *   3. submit to the scheduler (limits, network, files checked there);
 *   4. audit the findings against the execution;
 *   5. a client that goes away (its AbortSignal) kills the run, queued or
 *      running, so no sandbox outlives the request that wanted its answer.
 */
import { WardenError } from "../errors.js";
import type { Analyzer } from "../policy/analyzer.js";
import { checkPolicy, type RejectedResult } from "../policy/execution-policy.js";
import type { Finding, PolicyMode } from "../contract/policy.js";
import type { Execution, ExecutionSource } from "./execution.js";
import type { CreateExecutionInput } from "./request.js";
import type { ExecutionFrontend, LiveInput } from "./frontend.js";
import { checkSuiteOwner } from "../judging/suites.js";
import type { KeyIsolation } from "./isolation.js";

/** Who asks, as the interface authenticated them. */
export interface RunActor {
  /** The key's own user. */
  userId: string;
  /** The key has the delegate scope: it may name another user in the request. */
  mayDelegate: boolean;
  keyId?: string | undefined;
  /** The key's static-analysis mode; null or absent = the server's. */
  policy?: PolicyMode | null | undefined;
  /** The key's own egress allowlist (narrows the server's). */
  networkAllow?: string[] | null | undefined;
  /** The key's isolation tier: its default and whether it is forced (executions/isolation.ts). */
  isolation?: KeyIsolation | undefined;
}

export interface RunCodeOptions {
  source: ExecutionSource;
  /**
   * Aborted when the client goes away (HTTP connection closed, MCP call
   * cancelled): the run is killed. Leave it out only when the client asked
   * not to wait (202 and poll).
   */
  signal?: AbortSignal | undefined;
  /** The kill reason recorded on abort. @default "client disconnected" */
  abortReason?: string | undefined;
  /** In-process input (a stdin stream), for a frontend that is `interactive`. */
  live?: LiveInput | undefined;
}

export type RunCodeOutcome =
  | { rejected: RejectedResult; execution: null; findings: Finding[] }
  | { rejected: null; execution: Execution; findings: Finding[] | null };

export interface RunCodeDeps {
  service: ExecutionFrontend;
  /**
   * Absent on a cluster API node, which has no sandbox to analyse in: the
   * key's policy travels with the job and the worker analyses before it runs.
   */
  analyzer: Analyzer | null;
}

/** The user a request acts as; a body `userId` from a key without the delegate scope is refused. */
export function actingUser(actor: RunActor, requested: string | undefined): string {
  if (requested === undefined || requested === actor.userId) return actor.userId;
  if (!actor.mayDelegate)
    throw new WardenError(
      "PERMISSION_DENIED",
      "userId: only keys with the delegate scope may act for another user",
    );
  return requested;
}

export async function runCode(
  deps: RunCodeDeps,
  input: CreateExecutionInput,
  actor: RunActor,
  options: RunCodeOptions,
): Promise<RunCodeOutcome> {
  const { service, analyzer } = deps;
  const userId = actingUser(actor, input.userId);
  // A suite named by id is checked here, before anything is queued: only its owner may run it.
  if (input.testsFrom !== undefined)
    await checkSuiteOwner(service.artifacts, input.testsFrom, userId);
  const policy = analyzer
    ? await checkPolicy(analyzer, service, input, { policy: actor.policy }, userId)
    : { rejected: null, findings: null, audit: () => undefined };
  if (policy.rejected)
    return { rejected: policy.rejected, execution: null, findings: policy.rejected.findings };
  // Quotas per user and key (docs/usage.md): refused here, before anything is queued.
  const release =
    (await service.quotas?.admit({ userId, keyId: actor.keyId }, "execution")) ?? null;
  let execution: Execution;
  try {
    execution = await service.submit(
      input,
      {
        userId,
        keyId: actor.keyId,
        networkAllow: actor.networkAllow,
        isolation: actor.isolation,
        ...(analyzer ? {} : { policy: actor.policy ?? null }),
      },
      options.source,
      options.live,
    );
  } catch (error) {
    release?.();
    throw error;
  }
  if (release) void execution.done.then(release, release);
  if (policy.findings) policy.audit(execution.id);
  const signal = options.signal;
  if (signal) {
    const reason = options.abortReason ?? "client disconnected";
    const kill = (): void => {
      if (!execution.result) void service.killExecution(execution.id, reason);
    };
    // Gone while the code was being analysed: it is queued and killed at once,
    // so the record and the audit trail still say what happened.
    if (signal.aborted) kill();
    else {
      signal.addEventListener("abort", kill, { once: true });
      void execution.done.then(() => signal.removeEventListener("abort", kill));
    }
  }
  return { rejected: null, execution, findings: policy.findings };
}
