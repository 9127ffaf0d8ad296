/**
 * What one execution (or one session) used, read from the kernel: the
 * optional `metrics.usage` of a result, and the unit of usage accounting
 * (docs/usage.md). Every step of the execution counts (a compile too).
 */
import { z } from "zod";

export const ExecutionUsageSchema = z
  .object({
    cpuMs: z.number().describe("CPU time of every step (cgroup cpuacct / cpu.stat), ms."),
    memoryMbMs: z
      .number()
      .describe("Memory in use integrated over the run (MiB × ms), sampled from the cgroup."),
    wallMs: z.number().describe("Wall time of every step, ms."),
    peakMemoryBytes: z.number().describe("Highest memory of any step (the cgroup's peak)."),
    diskPeakBytes: z.number().describe("Highest use of the workspace tmpfs seen (statfs)."),
    egressBytes: z.number().describe("Bytes through the egress proxy, both ways."),
    egressConnections: z.number().describe("Connections the egress proxy made."),
    outputBytes: z.number().describe("stdout and stderr bytes the programs wrote."),
  })
  .describe("What the execution used, read from the kernel (docs/usage.md).");
export type ExecutionUsage = z.infer<typeof ExecutionUsageSchema>;

export const MiB = 1024 * 1024;

/** Nothing used: the start of a sum. */
export function emptyUsage(): ExecutionUsage {
  return {
    cpuMs: 0,
    memoryMbMs: 0,
    wallMs: 0,
    peakMemoryBytes: 0,
    diskPeakBytes: 0,
    egressBytes: 0,
    egressConnections: 0,
    outputBytes: 0,
  };
}

/** Two usages as one: sums, and maxima for the peaks. */
export function addUsage(a: ExecutionUsage, b: ExecutionUsage): ExecutionUsage {
  return {
    cpuMs: a.cpuMs + b.cpuMs,
    memoryMbMs: a.memoryMbMs + b.memoryMbMs,
    wallMs: a.wallMs + b.wallMs,
    peakMemoryBytes: Math.max(a.peakMemoryBytes, b.peakMemoryBytes),
    diskPeakBytes: Math.max(a.diskPeakBytes, b.diskPeakBytes),
    egressBytes: a.egressBytes + b.egressBytes,
    egressConnections: a.egressConnections + b.egressConnections,
    outputBytes: a.outputBytes + b.outputBytes,
  };
}

/** One period (and group) of a usage report, in the API's units (seconds, bytes). */
export const UsageRowSchema = z.object({
  period: z.string().describe("Start of the period (UTC)."),
  userId: z.string().optional(),
  keyId: z.string().nullable().optional(),
  executions: z.number(),
  sessions: z.number(),
  cpuSeconds: z.number(),
  memoryMbSeconds: z.number(),
  wallSeconds: z.number(),
  sessionSeconds: z.number(),
  peakMemoryBytes: z.number(),
  diskPeakBytes: z.number(),
  egressBytes: z.number(),
  egressConnections: z.number(),
  outputBytes: z.number(),
});

/** What a report's usage costs at the configured prices (usage.prices). */
export const UsageCostSchema = z.object({
  currency: z.string(),
  cpu: z.number(),
  memory: z.number(),
  egress: z.number(),
  sessions: z.number(),
  total: z.number(),
});

/** A usage report: `GET /v1/usage`, `GET /api/sandbox/usage`, `warden usage`. */
export const UsageReportSchema = z.object({
  granularity: z.enum(["hour", "day", "month"]),
  from: z.string(),
  to: z.string(),
  rows: z.array(UsageRowSchema),
  totals: UsageRowSchema,
  cost: UsageCostSchema.optional(),
});
export type UsageRow = z.infer<typeof UsageRowSchema>;
export type UsageCost = z.infer<typeof UsageCostSchema>;
export type UsageReport = z.infer<typeof UsageReportSchema>;
