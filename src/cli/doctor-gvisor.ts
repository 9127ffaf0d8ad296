/**
 * `warden doctor`, the gVisor tier's lines: whether it is available (runsc's
 * version, the platform, why the others were not chosen) or why not, and a
 * warning for runsc builds too old to be comfortable.
 */
import type { GvisorConfig } from "../config/gvisor-config.js";
import type { CgroupMode } from "../sandbox/cgroups/index.js";
import { describeProbe, type GvisorProbe } from "../sandbox/gvisor/probe.js";
import { quickGvisorStatus, versionWarning } from "../sandbox/gvisor/status.js";

export interface DoctorCheck {
  name: string;
  level: "ok" | "warn" | "fail";
  detail: string;
  fix?: string;
}

const LATEST =
  "https://storage.googleapis.com/gvisor/releases/release/latest/x86_64/runsc (check it against runsc.sha512)";

/** The lines for a status (pure: the doctor's probe or the server's). */
export function gvisorChecks(
  status: GvisorProbe,
  config: GvisorConfig,
  cgroupMode: CgroupMode,
): DoctorCheck[] {
  const checks: DoctorCheck[] = [];
  const detail = describeProbe(status);
  if (status.available) checks.push({ name: "gvisor", level: "ok", detail });
  else
    checks.push({
      name: "gvisor",
      // An optional tier: only an operator who asked for it (enabled: on) is blocked.
      level: config.enabled === "on" ? "fail" : "warn",
      detail,
      fix:
        config.enabled === "off"
          ? "set sandbox.gvisor.enabled to auto to offer the gvisor tier"
          : "apt-get install runsc (or set sandbox.gvisor.runscPath to a release), run as root",
    });
  const old = status.version ? versionWarning(status.version) : null;
  if (old)
    checks.push({
      name: "gvisor version",
      level: "warn",
      detail: old,
      fix: `download ${LATEST} and point sandbox.gvisor.runscPath at it`,
    });
  if (status.available && cgroupMode === "v2")
    checks.push({
      name: "gvisor cgroups",
      level: "warn",
      detail: "the gvisor tier was tested on cgroup v1 only; v2 is expected to work but untested",
    });
  return checks;
}

export async function gatherGvisorChecks(
  config: GvisorConfig,
  cgroupMode: CgroupMode,
): Promise<DoctorCheck[]> {
  return gvisorChecks(await quickGvisorStatus(config), config, cgroupMode);
}
