/**
 * The gVisor tier (`sandbox.gvisor.*`; docs/isolation.md): runsc, a user-space
 * kernel between the program and the host's, opt-in per request or key.
 */
import { z } from "zod";

export const GvisorConfigSchema = z
  .object({
    enabled: z
      .enum(["auto", "on", "off"])
      .default("auto")
      .describe(
        "auto: offer the tier when the probe at start-up passes; on: the same, but a failed probe is logged as an error; off: never.",
      ),
    runscPath: z
      .string()
      .startsWith("/")
      .default("/usr/bin/runsc")
      .describe("The runsc binary; point it at a newer gVisor release than the distribution's."),
    platform: z
      .enum(["auto", "systrap", "ptrace", "kvm"])
      .default("auto")
      .describe(
        "How the Sentry intercepts system calls. auto: kvm if /dev/kvm works and its probe passes, then systrap if this runsc has it, then ptrace.",
      ),
    memoryOverheadMb: z
      .number()
      .int()
      .min(0)
      .max(1024)
      .default(32)
      .describe("Added to a box's memory cgroup for gVisor's own kernel (about 15 MiB idle)."),
    pidsOverhead: z
      .number()
      .int()
      .min(0)
      .max(4096)
      .default(128)
      .describe("Added to a box's pids cgroup for gVisor's own threads (about 85 idle)."),
    debugDir: z
      .string()
      .startsWith("/")
      .nullable()
      .default(null)
      .describe("Where runsc writes its debug logs (null: none)."),
    probeTimeoutMs: z
      .number()
      .int()
      .min(500)
      .max(60_000)
      .default(5000)
      .describe("How long the start-up probe of each platform may take."),
  })
  .strict();

export type GvisorConfig = z.infer<typeof GvisorConfigSchema>;
