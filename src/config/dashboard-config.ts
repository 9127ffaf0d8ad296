/** The admin dashboard at /dashboard (docs/dashboard.md). */
import { z } from "zod";

export const DashboardConfigSchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe("Serve the admin dashboard at /dashboard (admin keys only)."),
    sessionTtlMinutes: z
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .default(60)
      .describe(
        "How long a dashboard login lasts (minutes); the session is also dead as soon as its key is revoked.",
      ),
    loginAttemptsPerMinute: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(10)
      .describe("Login attempts one client address may make per minute (brute-force guard)."),
    maxExportRows: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(10_000)
      .describe("Most audit events one CSV/NDJSON export holds."),
  })
  .strict();

export type DashboardConfig = z.infer<typeof DashboardConfigSchema>;
