/**
 * What a sandbox's egress costs the trail: every connection (or throttled
 * summary of refusals, src/network/events.ts) is counted in the metrics and
 * audited for the execution or session that made it.
 */
import type { Audit } from "../audit/trail.js";
import type { EgressPolicy } from "../network/policy.js";
import type { SandboxNetwork } from "../sandbox/types.js";
import type { Metrics } from "./metrics.js";

export interface EgressOwner {
  userId: string;
  executionId?: string;
  sessionId?: string;
}

export type EgressHook = (policy: EgressPolicy, owner: EgressOwner) => SandboxNetwork;

export function egressAccounting(audit: Audit, metrics: Metrics): EgressHook {
  return (policy, owner) => ({
    policy,
    onEvent: (e) => {
      metrics.egress(e);
      audit({
        executionId: owner.executionId,
        userId: owner.userId,
        level: e.decision === "allowed" ? "info" : "warn",
        event: `network_${e.decision}`,
        message: `${e.protocol} ${e.host}:${e.port} ${e.decision}${e.reason ? `: ${e.reason}` : ""}`,
        data: {
          host: e.host,
          port: e.port,
          protocol: e.protocol,
          bytes: e.bytes,
          address: e.address,
          reason: e.reason,
          count: e.count,
          ...(e.summary ? { summary: e.summary } : {}),
          ...(owner.sessionId ? { sessionId: owner.sessionId } : {}),
        },
      });
    },
  });
}
