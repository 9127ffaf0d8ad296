/**
 * Quota rules: a limit on one metric of a user's or a key's usage per UTC
 * day or month. The rules are stored here; what was used is read from the
 * usage rows (src/store/usage.ts), and src/usage/quotas.ts enforces them.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";

export const QUOTA_METRICS = ["cpuSeconds", "executions", "sessionHours", "egressBytes"] as const;
export const QUOTA_PERIODS = ["day", "month"] as const;
export const QUOTA_SUBJECTS = ["user", "key"] as const;
export type QuotaMetric = (typeof QUOTA_METRICS)[number];
export type QuotaPeriod = (typeof QUOTA_PERIODS)[number];
export type QuotaSubject = (typeof QUOTA_SUBJECTS)[number];

export interface NewQuota {
  subjectType: QuotaSubject;
  subjectId: string;
  metric: QuotaMetric;
  period: QuotaPeriod;
  limit: number;
}

export interface QuotaRule extends NewQuota {
  id: string;
  createdAt: number;
}

export interface QuotaFilter {
  subjectType?: QuotaSubject | undefined;
  subjectId?: string | undefined;
}

export interface QuotaRow {
  id: string;
  subject_type: string;
  subject_id: string;
  metric: string;
  period: string;
  quota_limit: number;
  created_at: number;
}

export const QuotaIdSchema = z.string().regex(/^quota_[a-f0-9]{12}$/, "id: not a quota id");

export function newQuotaId(): string {
  return `quota_${randomBytes(6).toString("hex")}`;
}

export function toQuota(row: QuotaRow): QuotaRule {
  return {
    id: row.id,
    subjectType: row.subject_type as QuotaSubject,
    subjectId: row.subject_id,
    metric: row.metric as QuotaMetric,
    period: row.period as QuotaPeriod,
    limit: Number(row.quota_limit),
    createdAt: Number(row.created_at),
  };
}

/** WHERE clause of a listing, and its arguments. */
export function quotaFilterSql(
  filter: QuotaFilter,
  dialect: "sqlite" | "postgres",
): { where: string; args: string[] } {
  const clauses: string[] = [];
  const args: string[] = [];
  const add = (column: string, value: string | undefined): void => {
    if (value === undefined) return;
    args.push(value);
    clauses.push(`${column} = ${dialect === "sqlite" ? "?" : `$${args.length}`}`);
  };
  add("subject_type", filter.subjectType);
  add("subject_id", filter.subjectId);
  return { where: clauses.length ? `WHERE ${clauses.join(" AND ")}` : "", args };
}
