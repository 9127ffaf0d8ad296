/**
 * Request limits: what a caller may ask, checked against the configured
 * maxima. A value above a maximum is refused (INVALID_REQUEST naming the
 * field and the limit), never silently clamped.
 */
import { z } from "zod";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import type { SandboxLimits } from "../sandbox/types.js";

export const RequestLimitsSchema = z
  .object({
    memoryMb: z.number().int().min(16).describe("Memory limit in MiB (swap off)."),
    cpuPercent: z.number().min(1).max(100).describe("Share of the host's CPU capacity, percent."),
    diskMb: z.number().int().min(1).describe("Size of /workspace + /tmp in MiB."),
    pids: z.number().int().min(8).describe("Maximum processes and threads."),
    outputBytes: z.number().int().min(1024).describe("Cap on each of stdout and stderr, bytes."),
  })
  .partial()
  .strict();

export type RequestLimits = z.infer<typeof RequestLimitsSchema>;

export interface LimitsRequest {
  /** Wall-clock timeout in seconds. */
  timeout?: number | undefined;
  limits?: RequestLimits | undefined;
}

/** Applies defaults and refuses anything over a maximum. */
export function resolveLimits(config: Config, request: LimitsRequest): SandboxLimits {
  const over = (field: string, value: number, max: number, key: string): void => {
    if (value > max)
      throw new WardenError(
        "INVALID_REQUEST",
        `${field}: ${value} exceeds the maximum ${max} (${key})`,
        {
          details: { field, limit: max },
        },
      );
  };
  const d = config.defaults;
  const l = request.limits ?? {};
  const timeout = request.timeout ?? config.defaultTimeout;
  if (!(timeout > 0))
    throw new WardenError("INVALID_REQUEST", "timeout: must be a positive number of seconds");
  over("timeout", timeout, config.maxTimeout, "maxTimeout");
  const limits: SandboxLimits = {
    timeoutMs: Math.round(timeout * 1000),
    killGraceMs: Math.round(config.killGracePeriod * 1000),
    memoryMb: l.memoryMb ?? d.memoryMb,
    cpuPercent: l.cpuPercent ?? d.cpuPercent,
    diskMb: l.diskMb ?? d.diskMb,
    pids: l.pids ?? d.pids,
    outputBytes: l.outputBytes ?? d.outputBytes,
    openFiles: d.openFiles,
  };
  over("limits.memoryMb", limits.memoryMb, config.maxMemoryMB, "maxMemoryMB");
  over("limits.cpuPercent", limits.cpuPercent, config.maxCpuPercent, "maxCpuPercent");
  over("limits.diskMb", limits.diskMb, config.maxDiskMB, "maxDiskMB");
  over("limits.pids", limits.pids, config.maxPids, "maxPids");
  over("limits.outputBytes", limits.outputBytes, config.maxOutputBytes, "maxOutputBytes");
  return limits;
}
