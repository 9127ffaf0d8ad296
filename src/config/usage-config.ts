/** Usage accounting, prices and quota enforcement (`usage.*`; docs/usage.md). */
import { z } from "zod";

const price = (what: string) =>
  z.number().min(0).max(1e9).optional().describe(`Price ${what} (absent: not charged).`);

export const UsagePricesSchema = z
  .object({
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, "must be an ISO 4217 code such as USD")
      .default("USD")
      .describe("Currency of the prices (ISO 4217)."),
    cpuSecond: price("per CPU-second"),
    gbSecond: price("per GiB-second of memory in use"),
    egressGb: price("per GiB through the egress proxy"),
    sessionHour: price("per hour of a live session"),
  })
  .strict();
export type UsagePrices = z.infer<typeof UsagePricesSchema>;

export const UsageConfigSchema = z
  .object({
    retentionDays: z
      .number()
      .positive()
      .default(400)
      .describe("How long hourly usage rows are kept (beyond the raw records' retentionDays)."),
    maxRows: z
      .number()
      .int()
      .min(10)
      .max(1_000_000)
      .default(10_000)
      .describe(
        "Rows one usage report may hold (JSON); a larger one is refused: narrow from/to or use a coarser granularity.",
      ),
    maxExportRows: z
      .number()
      .int()
      .min(10)
      .max(10_000_000)
      .default(100_000)
      .describe("Rows one CSV or NDJSON export may hold (streamed)."),
    sampleMs: z
      .number()
      .int()
      .min(50)
      .max(5_000)
      .default(200)
      .describe("How often a live session's memory and disk are sampled (ms)."),
    sessionFlushSeconds: z
      .number()
      .int()
      .min(10)
      .max(3600)
      .default(300)
      .describe(
        "A live session's usage is recorded this often (s), and once more when it ends, so hourly rows stay honest.",
      ),
    quotaCacheMs: z
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(1000)
      .describe(
        "How long quota checks may reuse a subject's usage read (ms); see docs/usage.md for the overshoot this allows.",
      ),
    userClasses: z
      .record(z.string().max(128), z.string().regex(/^[a-z][a-z0-9_]{0,31}$/))
      .default({})
      .refine((m) => new Set(Object.values(m)).size <= 50, "at most 50 distinct classes")
      .describe(
        "User id → class label of the Prometheus usage counters; others are classed by their key's scopes (admin, delegate, user) or anonymous.",
      ),
    prices: UsagePricesSchema.optional().describe(
      "A price list: reports then carry `cost` (docs/usage.md).",
    ),
  })
  .strict();
export type UsageConfig = z.infer<typeof UsageConfigSchema>;
