/**
 * Request limits: what a caller may ask, checked against the configured
 * maxima. A value above a maximum is refused (INVALID_REQUEST naming the
 * field and the limit), never silently clamped.
 */
import { z } from "zod";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import type { CompileLimits } from "../runtimes/execute.js";
import type { SandboxLimits } from "../sandbox/types.js";

export { RequestLimitsSchema, type RequestLimits } from "../contract/limits.js";
import type { RequestLimits } from "../contract/limits.js";

/** Limits of a compiled language's compile step; unset ones are the runtime's defaults. */
export const CompileLimitsSchema = z
  .object({
    timeout: z.number().positive().describe("Wall-clock limit of the compile step, seconds."),
    memoryMb: z.number().int().min(16).describe("Memory limit of the compile step, MiB."),
    cpuTimeMs: z.number().int().min(1).describe("CPU time of the compile step, ms."),
  })
  .partial()
  .strict()
  .describe("Limits of the compile step (compiled languages); ignored by interpreted ones.");

export type RequestCompileLimits = z.infer<typeof CompileLimitsSchema>;

export interface LimitsRequest {
  /** Wall-clock timeout in seconds. */
  timeout?: number | undefined;
  limits?: RequestLimits | undefined;
}

type Over = (field: string, value: number, max: number, key: string) => void;

const over: Over = (field, value, max, key) => {
  if (value > max)
    throw new WardenError(
      "INVALID_REQUEST",
      `${field}: ${value} exceeds the maximum ${max} (${key})`,
      {
        details: { field, limit: max },
      },
    );
};

/** Applies defaults and refuses anything over a maximum. */
export function resolveLimits(config: Config, request: LimitsRequest): SandboxLimits {
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
    cpuTimeMs: l.cpuTimeMs,
  };
  over("limits.memoryMb", limits.memoryMb, config.maxMemoryMB, "maxMemoryMB");
  over("limits.cpuPercent", limits.cpuPercent, config.maxCpuPercent, "maxCpuPercent");
  over("limits.diskMb", limits.diskMb, config.maxDiskMB, "maxDiskMB");
  over("limits.pids", limits.pids, config.maxPids, "maxPids");
  over("limits.outputBytes", limits.outputBytes, config.maxOutputBytes, "maxOutputBytes");
  // CPU time cannot usefully exceed the longest wall time a run may have.
  if (limits.cpuTimeMs !== undefined)
    over("limits.cpuTimeMs", limits.cpuTimeMs, config.maxTimeout * 1000, "maxTimeout × 1000");
  return limits;
}

/** A request's compile-step limits, checked against the same maxima as a run's. */
export function resolveCompileLimits(
  config: Config,
  compile: RequestCompileLimits | undefined,
): CompileLimits | undefined {
  if (!compile) return undefined;
  const c: CompileLimits = {};
  if (compile.timeout !== undefined) {
    over("compileLimits.timeout", compile.timeout, config.maxTimeout, "maxTimeout");
    c.timeoutMs = Math.round(compile.timeout * 1000);
  }
  if (compile.memoryMb !== undefined) {
    over("compileLimits.memoryMb", compile.memoryMb, config.maxMemoryMB, "maxMemoryMB");
    c.memoryMb = compile.memoryMb;
  }
  if (compile.cpuTimeMs !== undefined) {
    const max = config.maxTimeout * 1000;
    over("compileLimits.cpuTimeMs", compile.cpuTimeMs, max, "maxTimeout × 1000");
    c.cpuTimeMs = compile.cpuTimeMs;
  }
  return c;
}
