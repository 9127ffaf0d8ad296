/**
 * Usage accounting's rows, shared by both stores: one row per (UTC hour,
 * user, key) with counters, added to when an execution's final record is
 * written (in the same transaction, so a run is counted once and only once)
 * and when a session records what it used. Days and months are summed from
 * hours at query time. Rows outlive the raw records (`usage.retentionDays`).
 */
import type { ExecutionResult } from "../contract/result.js";
import type { ExecutionUsage } from "../contract/usage.js";

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

export type Granularity = "hour" | "day" | "month";
export type GroupBy = "user" | "key" | "none";

/** What is added to one hour's row. */
export interface UsageDelta {
  userId: string;
  keyId: string | null;
  /** When it was used (the row is its UTC hour). */
  at: number;
  executions: number;
  sessions: number;
  usage: ExecutionUsage;
  sessionMs: number;
}

/** A row as the stores read it: totals of one period (and group). */
export interface UsageTotals {
  executions: number;
  sessions: number;
  cpuMs: number;
  memoryMbMs: number;
  wallMs: number;
  sessionMs: number;
  peakMemoryBytes: number;
  diskPeakBytes: number;
  egressBytes: number;
  egressConnections: number;
  outputBytes: number;
}

export interface UsagePeriodRow extends UsageTotals {
  /** Start of the period, ms since the epoch (UTC). */
  period: number;
  userId?: string;
  keyId?: string | null;
}

export interface UsageQuery {
  fromMs: number;
  toMs: number;
  granularity: Granularity;
  userId?: string | undefined;
  keyId?: string | undefined;
  groupBy: GroupBy;
  /** At most this many rows come back: one more means the query was cut. */
  limit: number;
}

/** The columns summed (name in SQL, field) and those kept as maxima. */
export const SUMMED = [
  ["executions", "executions"],
  ["sessions", "sessions"],
  ["cpu_ms", "cpuMs"],
  ["memory_mb_ms", "memoryMbMs"],
  ["wall_ms", "wallMs"],
  ["session_ms", "sessionMs"],
  ["egress_bytes", "egressBytes"],
  ["egress_connections", "egressConnections"],
  ["output_bytes", "outputBytes"],
] as const;
export const MAXIMA = [
  ["peak_memory_bytes", "peakMemoryBytes"],
  ["disk_peak_bytes", "diskPeakBytes"],
] as const;
const COLUMNS = [...SUMMED, ...MAXIMA];

/** The key column never holds NULL (it is in the primary key): no key is ''. */
export const NO_KEY = "";

export function hourOf(ms: number): number {
  return ms - (((ms % HOUR_MS) + HOUR_MS) % HOUR_MS);
}

/** What an execution's final record adds: one execution and what its result says it used. */
export function executionDelta(
  row: { user_id: string; key_id: string | null; status: string; started_at: number | null },
  result: ExecutionResult,
  at: number,
): UsageDelta | null {
  // Only the first final write counts (a record already final is not counted again),
  // and only a run that started or reported usage (a policy refusal used nothing).
  if (row.status !== "queued" && row.status !== "running") return null;
  const usage = result.metrics.usage;
  if (!usage && row.started_at === null) return null;
  return {
    userId: row.user_id,
    keyId: row.key_id,
    at,
    executions: 1,
    sessions: 0,
    sessionMs: 0,
    usage: usage ?? {
      cpuMs: result.metrics.cpuTimeMs,
      memoryMbMs: 0,
      wallMs: result.metrics.executionTimeMs,
      peakMemoryBytes: result.metrics.peakMemoryBytes,
      diskPeakBytes: 0,
      egressBytes: 0,
      egressConnections: 0,
      outputBytes: 0,
    },
  };
}

/** The upsert of one delta; `?` or `$n` placeholders, in `deltaParams` order. */
export function upsertSql(dialect: "sqlite" | "postgres"): string {
  const p = (i: number): string => (dialect === "sqlite" ? "?" : `$${i}`);
  const max = dialect === "sqlite" ? "MAX" : "GREATEST";
  const names = ["hour", "user_id", "key_id", ...COLUMNS.map(([c]) => c)];
  const sums = SUMMED.map(([c]) => `${c} = usage_hourly.${c} + excluded.${c}`);
  const maxima = MAXIMA.map(([c]) => `${c} = ${max}(usage_hourly.${c}, excluded.${c})`);
  return `INSERT INTO usage_hourly (${names.join(", ")}) VALUES (${names.map((_, i) => p(i + 1)).join(", ")})
          ON CONFLICT (hour, user_id, key_id) DO UPDATE SET ${[...sums, ...maxima].join(", ")}`;
}

export function deltaParams(d: UsageDelta): (string | number)[] {
  const u = d.usage;
  const values: Record<string, number> = {
    executions: d.executions,
    sessions: d.sessions,
    cpuMs: Math.round(u.cpuMs),
    memoryMbMs: Math.round(u.memoryMbMs),
    wallMs: Math.round(u.wallMs),
    sessionMs: Math.round(d.sessionMs),
    egressBytes: u.egressBytes,
    egressConnections: u.egressConnections,
    outputBytes: u.outputBytes,
    peakMemoryBytes: u.peakMemoryBytes,
    diskPeakBytes: u.diskPeakBytes,
  };
  return [hourOf(d.at), d.userId, d.keyId ?? NO_KEY, ...COLUMNS.map(([, f]) => values[f]!)];
}

/** The period a row's hour falls in, as SQL. */
function periodSql(granularity: Granularity, dialect: "sqlite" | "postgres"): string {
  if (granularity === "hour") return "hour";
  if (granularity === "day") return `(hour - (hour % ${DAY_MS}))`;
  return dialect === "sqlite"
    ? "(CAST(strftime('%s', hour / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000)"
    : "(extract(epoch from date_trunc('month', to_timestamp(hour / 1000) AT TIME ZONE 'UTC')) * 1000)::bigint";
}

/** A usage query as SQL and its arguments; rows come back in the shape toPeriodRow reads. */
export function usageQuerySql(
  q: UsageQuery,
  dialect: "sqlite" | "postgres",
): { sql: string; args: (string | number)[] } {
  const args: (string | number)[] = [];
  const p = (value: string | number): string => {
    args.push(value);
    return dialect === "sqlite" ? "?" : `$${args.length}`;
  };
  const where = [`hour >= ${p(hourOf(q.fromMs))}`, `hour < ${p(q.toMs)}`];
  if (q.userId !== undefined) where.push(`user_id = ${p(q.userId)}`);
  if (q.keyId !== undefined) where.push(`key_id = ${p(q.keyId)}`);
  const groups =
    q.groupBy === "user" ? ["user_id"] : q.groupBy === "key" ? ["user_id", "key_id"] : [];
  const period = periodSql(q.granularity, dialect);
  const selected = [
    `${period} AS period`,
    ...groups,
    ...SUMMED.map(([c]) => `SUM(${c}) AS ${c}`),
    ...MAXIMA.map(([c]) => `MAX(${c}) AS ${c}`),
  ];
  const groupBy = ["1", ...groups.map((_, i) => String(i + 2))].join(", ");
  const sql = `SELECT ${selected.join(", ")} FROM usage_hourly WHERE ${where.join(" AND ")}
               GROUP BY ${groupBy} ORDER BY ${groupBy} LIMIT ${p(q.limit)}`;
  return { sql, args };
}

export function toPeriodRow(row: Record<string, unknown>): UsagePeriodRow {
  const out: UsagePeriodRow = { period: Number(row.period), ...emptyTotals() };
  for (const [c, f] of COLUMNS) out[f] = Number(row[c] ?? 0);
  if (typeof row.user_id === "string") out.userId = row.user_id;
  if (typeof row.key_id === "string") out.keyId = row.key_id === NO_KEY ? null : row.key_id;
  return out;
}

export function emptyTotals(): UsageTotals {
  return {
    executions: 0,
    sessions: 0,
    cpuMs: 0,
    memoryMbMs: 0,
    wallMs: 0,
    sessionMs: 0,
    peakMemoryBytes: 0,
    diskPeakBytes: 0,
    egressBytes: 0,
    egressConnections: 0,
    outputBytes: 0,
  };
}

/** Sums and maxima of a subject's rows in [fromMs, toMs), for quotas. */
export function subjectSumSql(
  subject: { userId?: string | undefined; keyId?: string | undefined },
  dialect: "sqlite" | "postgres",
): string {
  const p = (i: number): string => (dialect === "sqlite" ? "?" : `$${i}`);
  const column = subject.keyId !== undefined ? "key_id" : "user_id";
  return `SELECT ${SUMMED.map(([c]) => `COALESCE(SUM(${c}), 0) AS ${c}`).join(", ")},
                 ${MAXIMA.map(([c]) => `COALESCE(MAX(${c}), 0) AS ${c}`).join(", ")}
          FROM usage_hourly WHERE ${column} = ${p(1)} AND hour >= ${p(2)} AND hour < ${p(3)}`;
}

/** The usage table, in both dialects' common SQL (BIGINT is INTEGER to SQLite). */
export const USAGE_TABLES_SQL = `CREATE TABLE usage_hourly (
     hour BIGINT NOT NULL, user_id TEXT NOT NULL, key_id TEXT NOT NULL,
     executions BIGINT NOT NULL DEFAULT 0, sessions BIGINT NOT NULL DEFAULT 0,
     cpu_ms BIGINT NOT NULL DEFAULT 0, memory_mb_ms BIGINT NOT NULL DEFAULT 0,
     wall_ms BIGINT NOT NULL DEFAULT 0, session_ms BIGINT NOT NULL DEFAULT 0,
     egress_bytes BIGINT NOT NULL DEFAULT 0, egress_connections BIGINT NOT NULL DEFAULT 0,
     output_bytes BIGINT NOT NULL DEFAULT 0,
     peak_memory_bytes BIGINT NOT NULL DEFAULT 0, disk_peak_bytes BIGINT NOT NULL DEFAULT 0,
     PRIMARY KEY (hour, user_id, key_id));
   CREATE INDEX usage_user ON usage_hourly (user_id, hour);
   CREATE INDEX usage_key ON usage_hourly (key_id, hour);
   CREATE TABLE quotas (
     id TEXT PRIMARY KEY, subject_type TEXT NOT NULL, subject_id TEXT NOT NULL,
     metric TEXT NOT NULL, period TEXT NOT NULL, quota_limit DOUBLE PRECISION NOT NULL,
     created_at BIGINT NOT NULL, UNIQUE (subject_type, subject_id, metric, period));`;
