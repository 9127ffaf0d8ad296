/**
 * The hard limits of one run, as the engine enforces them and the store keeps
 * them with each execution record. Every field is enforced by the kernel (or by
 * the host on the bytes it receives), not estimated.
 */
import { z } from "zod";

export const SandboxLimitsSchema = z.object({
  timeoutMs: z.number().describe("Wall-clock limit; then SIGTERM, then SIGKILL after killGraceMs."),
  killGraceMs: z.number().describe("Time between SIGTERM and SIGKILL."),
  cpuTimeMs: z
    .number()
    .optional()
    .describe(
      "CPU time of the whole process tree (cgroup accounting); unset: only the wall limit.",
    ),
  memoryMb: z.number().describe("cgroup memory limit, swap off."),
  cpuPercent: z.number().describe("Share of the host's total CPU capacity (cgroup CPU quota)."),
  diskMb: z
    .number()
    .describe(
      "Size of the private tmpfs behind /workspace and /tmp (set when the box is prepared).",
    ),
  pids: z.number().describe("cgroup pids limit: processes plus threads."),
  outputBytes: z.number().describe("Cap on each of stdout and stderr."),
  openFiles: z.number().describe("RLIMIT_NOFILE."),
});
export type SandboxLimits = z.infer<typeof SandboxLimitsSchema>;

/** The limits a request may ask for, each within the configured maximum. */
export const RequestLimitsSchema = z
  .object({
    memoryMb: z.number().int().min(16).describe("Memory limit in MiB (swap off)."),
    cpuPercent: z.number().min(1).max(100).describe("Share of the host's CPU capacity, percent."),
    diskMb: z.number().int().min(1).describe("Size of /workspace + /tmp in MiB."),
    pids: z.number().int().min(8).describe("Maximum processes and threads."),
    outputBytes: z.number().int().min(1024).describe("Cap on each of stdout and stderr, bytes."),
    cpuTimeMs: z
      .number()
      .int()
      .min(1)
      .describe("CPU time of the program's whole process tree, ms; past it, status timeout."),
  })
  .partial()
  .strict();

export type RequestLimits = z.infer<typeof RequestLimitsSchema>;
