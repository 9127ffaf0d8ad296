/**
 * Usage reports: hourly rows read from the store, summed into the asked
 * granularity, in the API's units (seconds, bytes), with their cost when a
 * price list is configured. A report is bounded: past its row cap it is
 * refused with a message that says how to narrow it, never cut silently.
 */
import type { UsageConfig, UsagePrices } from "../config/usage-config.js";
import type { UsageCost, UsageReport, UsageRow } from "../contract/usage.js";
import { WardenError } from "../errors.js";
import type { UsageStore } from "../store/store.js";
import {
  emptyTotals,
  MAXIMA,
  SUMMED,
  type UsagePeriodRow,
  type UsageQuery,
  type UsageTotals,
} from "../store/usage.js";

/** A usage query without its row cap (the report sets it from usage.maxRows). */
export type ReportQuery = Omit<UsageQuery, "limit">;

/** Dates a report may name: anything outside is a typo, not a query. */
const EARLIEST_MS = Date.UTC(2000, 0, 1);
const LATEST_MS = Date.UTC(2200, 0, 1);

/** A report's range checked: from before to, both within sane years. */
export function checkRange(fromMs: number, toMs: number): void {
  for (const [name, ms] of [
    ["from", fromMs],
    ["to", toMs],
  ] as const)
    if (!Number.isFinite(ms) || ms < EARLIEST_MS || ms > LATEST_MS)
      throw new WardenError("INVALID_REQUEST", `${name}: must be a date between 2000 and 2200`);
  if (fromMs >= toMs) throw new WardenError("INVALID_REQUEST", "from: must be before to");
}

const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

export function toUsageRow(r: UsageTotals & { period: number }, withGroup = true): UsageRow {
  const out: UsageRow = {
    period: new Date(r.period).toISOString(),
    executions: r.executions,
    sessions: r.sessions,
    // ms / 1000 from an exact integer sum: the sum of what results reported, to the ms.
    cpuSeconds: r.cpuMs / 1000,
    memoryMbSeconds: round(r.memoryMbMs / 1000),
    wallSeconds: r.wallMs / 1000,
    sessionSeconds: r.sessionMs / 1000,
    peakMemoryBytes: r.peakMemoryBytes,
    diskPeakBytes: r.diskPeakBytes,
    egressBytes: r.egressBytes,
    egressConnections: r.egressConnections,
    outputBytes: r.outputBytes,
  };
  const g = r as UsagePeriodRow;
  if (withGroup && g.userId !== undefined) out.userId = g.userId;
  if (withGroup && g.keyId !== undefined) out.keyId = g.keyId;
  return out;
}

/** Rows added up as the store adds hours up: SUMMED summed, MAXIMA the highest. */
export function sumRows(rows: readonly UsageTotals[]): UsageTotals {
  const t = emptyTotals();
  for (const r of rows) {
    for (const [, k] of SUMMED) t[k] += r[k];
    for (const [, k] of MAXIMA) t[k] = Math.max(t[k], r[k]);
  }
  return t;
}

const GiB = 1024 ** 3;

export function costOf(t: UsageTotals, prices: UsagePrices): UsageCost {
  const cpu = (t.cpuMs / 1000) * (prices.cpuSecond ?? 0);
  const memory = (t.memoryMbMs / 1000 / 1024) * (prices.gbSecond ?? 0);
  const egress = (t.egressBytes / GiB) * (prices.egressGb ?? 0);
  const sessions = (t.sessionMs / 3_600_000) * (prices.sessionHour ?? 0);
  const c = (n: number): number => round(n, 6);
  return {
    currency: prices.currency,
    cpu: c(cpu),
    memory: c(memory),
    egress: c(egress),
    sessions: c(sessions),
    total: c(cpu + memory + egress + sessions),
  };
}

/** Reads at most `limit` rows; one more means the report is too large: refused. */
export async function readRows(
  usage: UsageStore,
  q: ReportQuery,
  limit: number,
  limitName: string,
): Promise<UsagePeriodRow[]> {
  checkRange(q.fromMs, q.toMs);
  const rows = await usage.query({ ...q, limit: limit + 1 });
  if (rows.length > limit)
    throw new WardenError(
      "INVALID_REQUEST",
      `from, to: the report has more than ${limit} rows (${limitName}); narrow from/to, filter by userId or keyId, or use a coarser granularity`,
      { details: { maxRows: limit } },
    );
  return rows;
}

export async function usageReport(
  usage: UsageStore,
  config: UsageConfig,
  q: ReportQuery,
): Promise<UsageReport> {
  const rows = await readRows(usage, q, config.maxRows, "usage.maxRows");
  const totals = sumRows(rows);
  return {
    granularity: q.granularity,
    from: new Date(q.fromMs).toISOString(),
    to: new Date(q.toMs).toISOString(),
    rows: rows.map((r) => toUsageRow(r)),
    totals: toUsageRow({ ...totals, period: q.fromMs }, false),
    ...(config.prices ? { cost: costOf(totals, config.prices) } : {}),
  };
}

export type { UsageCost, UsageReport, UsageRow };
