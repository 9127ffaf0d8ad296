/**
 * Whether this host offers the gVisor tier, as the host reports it to the
 * interfaces (`GET /v1/runtimes`, the submit check, `warden doctor`). The
 * probe at `SandboxHost.open` (src/sandbox/gvisor/probe.ts) fills it; a host
 * without that probe reports the tier as not available, never as present.
 */
export type TierStatus =
  | { available: true; platform: string; version: string | null }
  | { available: false; reason: string };

/** What a host says before it can run gVisor boxes. */
export const GVISOR_NOT_BUILT: TierStatus = {
  available: false,
  reason: "this Warden build has no gVisor box yet",
};

/** The one accessor the interfaces read the tier's state through. */
export interface TierReporter {
  gvisorStatus(): TierStatus;
}
