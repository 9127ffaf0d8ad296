/**
 * Which isolation tier a run gets (docs/isolation.md). One pure function, so
 * every interface — REST, MCP, sessions, notebooks, the CLI and the Piston,
 * Judge0 and E2B adapters, which pass no field — resolves it the same way.
 */
import type { Isolation } from "../contract/isolation.js";
import { WardenError } from "../errors.js";
import type { TierReporter } from "../sandbox/tiers.js";
import type { KeyIsolation } from "../contract/key-isolation.js";

export { checkKeyIsolation, type KeyIsolation } from "../contract/key-isolation.js";

/**
 * The order: a key forced to gvisor wins, and a request asking for namespaces
 * on it is refused (403) rather than quietly upgraded, so a client learns its
 * key's rule; then the request's field; then the key's default; then
 * `sandbox.isolation`. A forced key is a tenant that must never share the
 * host kernel: nothing a request says can bring it back to namespaces.
 */
export function resolveIsolation(
  serverDefault: Isolation,
  requested: Isolation | undefined,
  key: KeyIsolation | null | undefined,
  field = "isolation",
): Isolation {
  if (key?.isolationForced && key.isolationDefault === "gvisor") {
    if (requested === "namespaces")
      throw new WardenError(
        "ISOLATION_FORBIDDEN",
        `${field}: this key may run only in the gvisor tier (an admin forced it)`,
      );
    return "gvisor";
  }
  return requested ?? key?.isolationDefault ?? serverDefault;
}

/**
 * Refuses a gvisor run on a host without the tier (503), with the probe's
 * reason: silently running it in namespaces would break the key's promise.
 */
export function checkTierAvailable(host: TierReporter, isolation: Isolation | undefined): void {
  if (isolation !== "gvisor") return;
  const status = host.gvisorStatus();
  // Pending (the probe at start-up still running): prepare waits for it and refuses then.
  if (!status.available && !status.pending)
    throw new WardenError(
      "ISOLATION_UNAVAILABLE",
      `gVisor tier not available on this host: ${status.reason}`,
    );
}

/** The tiers a host runs, for `GET /v1/runtimes`: namespaces always, gvisor when it is available. */
export function tiersOf(host: TierReporter): Isolation[] {
  return host.gvisorStatus().available ? ["namespaces", "gvisor"] : ["namespaces"];
}
