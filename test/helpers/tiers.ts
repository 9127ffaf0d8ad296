/**
 * The isolation tiers attack tests run in. A module of its own because
 * finding out opens the file's sandbox host (top-level await): only the
 * files that run both tiers pay for it.
 */
import { existsSync } from "node:fs";
import { describe, it } from "vitest";
import type { Isolation } from "../../src/contract/isolation.js";
import { config, testHost } from "./sandbox.js";

/**
 * The tiers the attack tests run in: namespaces always; gvisor when this
 * host's probe says the tier works. Asked once per file (it opens the host,
 * so only where runsc exists). A tier that cannot run is reported with its
 * reason through `skippedTiers`, never left out silently.
 */
async function gvisorUnavailable(): Promise<string | null> {
  const gv = config.sandbox.gvisor;
  if (gv.enabled === "off") return "sandbox.gvisor.enabled is off";
  if (!existsSync(gv.runscPath)) return `no runsc at ${gv.runscPath} (apt-get install runsc)`;
  if (process.getuid?.() !== 0) return "the tests do not run as root";
  // Waits for the host's probe at open (runsc runs /bin/true per platform).
  const probe = await (await testHost()).gvisor();
  return probe.available ? null : (probe.reason ?? "not probed");
}

const gvisorReason = await gvisorUnavailable();
// stderr, so the reason shows in every run that leaves the tier out.
if (gvisorReason) console.error(`gvisor tier tests skipped: ${gvisorReason}`);

export const TIERS: Isolation[] = gvisorReason ? ["namespaces"] : ["namespaces", "gvisor"];

/** The tiers left out, with why, for `describe.skip` (the reason shows in the report). */
export const SKIPPED_TIERS: { tier: Isolation; reason: string }[] = gvisorReason
  ? [{ tier: "gvisor", reason: gvisorReason }]
  : [];

/** One skipped suite per tier left out, named with the reason, so a report shows the gap. */
export function skippedTiers(suite: string): void {
  for (const { tier, reason } of SKIPPED_TIERS)
    describe.skip(`${suite} [${tier}]`, () => {
      it(`not run: ${reason}`, () => undefined);
    });
}
