/**
 * The admin monitoring API's answers: defined once here, filled by the
 * execution service and the warm pool, sent by the admin routes.
 */
import { z } from "zod";

/** The warm pool, per template (language|diskMb|memoryMb|pids|openFiles[|warm]). */
export const PoolStatsSchema = z.object({
  key: z.string(),
  ready: z.number().describe("Boxes started and waiting for a request."),
  starting: z.number(),
  target: z.number().describe("The size the pool aims for now, from the recent arrival rate."),
  hits: z.number(),
  misses: z.number(),
  memoryBytes: z.number().describe("What the ready boxes use, read from their cgroups."),
});
export type PoolStats = z.infer<typeof PoolStatsSchema>;

export const SystemMetricsSchema = z.object({
  activeExecutions: z.number(),
  queuedExecutions: z.number(),
  totalUsers: z.number(),
  utilizationPercent: z.number(),
  maxConcurrentSandboxes: z.number(),
  maxSandboxesPerUser: z.number(),
  memoryReservedMb: z.number(),
  memoryBudgetMb: z.number(),
  memoryBudgetMode: z.string().describe("`reserve` or `usage` (memoryBudgetMode)."),
  memoryUsedMb: z
    .number()
    .describe("usage mode: the kernel's last measure of all sandboxes' memory (MiB)."),
  pool: z.array(PoolStatsSchema).describe("The warm pool, per template."),
});
export type SystemMetrics = z.infer<typeof SystemMetricsSchema>;

export const UserMetricsSchema = z.object({
  userId: z.string(),
  activeExecutions: z.number(),
  queuedExecutions: z.number(),
  utilizationPercent: z.number(),
  maxSandboxesPerUser: z.number(),
});
export type UserMetrics = z.infer<typeof UserMetricsSchema>;
