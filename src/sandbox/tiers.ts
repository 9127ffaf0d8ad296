/**
 * Whether this host offers the gVisor tier, as the host reports it to the
 * interfaces (`GET /v1/runtimes`, the submit check, `warden doctor`). The
 * probe at `SandboxHost.open` (src/sandbox/gvisor/probe.ts) fills it; until
 * it has answered the tier is pending, never reported as present.
 */
export type TierStatus =
  | { available: true; platform: string; version: string | null }
  /** `pending`: the probe at start-up has not answered yet (prepare waits for it). */
  | { available: false; reason: string; pending?: boolean };

/** The one accessor the interfaces read the tier's state through. */
export interface TierReporter {
  gvisorStatus(): TierStatus;
}
