/** Usage rows and quota rules in PostgreSQL (shapes and SQL in src/store/usage.ts, quotas.ts). */
import type pg from "pg";
import type { QuotaStore, UsageStore } from "../store.js";
import {
  newQuotaId,
  quotaFilterSql,
  toQuota,
  type NewQuota,
  type QuotaFilter,
  type QuotaRow,
  type QuotaRule,
} from "../quotas.js";
import {
  deltaParams,
  executionDelta,
  hourOf,
  subjectSumSql,
  toPeriodRow,
  upsertSql,
  usageQuerySql,
  type UsageDelta,
  type UsagePeriodRow,
  type UsageQuery,
  type UsageTotals,
} from "../usage.js";
import type { ExecutionResult } from "../../contract/result.js";
import { query, type Queryable } from "./pool.js";

const UPSERT = upsertSql("postgres");

/**
 * Counts an execution's final write, on the connection of the transaction
 * that writes it (records.finished, the cluster's fenced finish): the row is
 * locked, so two finishes cannot both see it unfinished and count twice.
 */
export async function countFinished(
  on: Queryable,
  id: string,
  result: ExecutionResult,
  at: number,
): Promise<void> {
  const { rows } = await query<{
    user_id: string;
    key_id: string | null;
    status: string;
    started_at: number | null;
  }>(on, "SELECT user_id, key_id, status, started_at FROM executions WHERE id = $1 FOR UPDATE", [
    id,
  ]);
  const delta = rows[0] ? executionDelta(rows[0], result, at) : null;
  if (delta) await query(on, UPSERT, deltaParams(delta));
}

export class PgUsageStore implements UsageStore {
  constructor(private readonly pool: pg.Pool) {}

  async add(delta: UsageDelta): Promise<void> {
    await query(this.pool, UPSERT, deltaParams(delta));
  }

  async query(q: UsageQuery): Promise<UsagePeriodRow[]> {
    const { sql, args } = usageQuerySql(q, "postgres");
    return (await query(this.pool, sql, args)).rows.map(toPeriodRow);
  }

  async totals(
    subject: { userId: string } | { keyId: string },
    fromMs: number,
    toMs: number,
  ): Promise<UsageTotals> {
    const id = "keyId" in subject ? subject.keyId : subject.userId;
    const { rows } = await query(this.pool, subjectSumSql(subject, "postgres"), [
      id,
      hourOf(fromMs),
      toMs,
    ]);
    const { period: _period, ...totals } = toPeriodRow({ ...rows[0], period: 0 });
    return totals;
  }

  async expire(retentionMs: number): Promise<number> {
    const { rowCount } = await query(this.pool, "DELETE FROM usage_hourly WHERE hour < $1", [
      Date.now() - retentionMs,
    ]);
    return rowCount ?? 0;
  }
}

export class PgQuotaStore implements QuotaStore {
  constructor(private readonly pool: pg.Pool) {}

  async put(q: NewQuota): Promise<QuotaRule> {
    const { rows } = await query<QuotaRow>(
      this.pool,
      `INSERT INTO quotas (id, subject_type, subject_id, metric, period, quota_limit, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (subject_type, subject_id, metric, period) DO UPDATE SET quota_limit = excluded.quota_limit
       RETURNING *`,
      [newQuotaId(), q.subjectType, q.subjectId, q.metric, q.period, q.limit, Date.now()],
    );
    return toQuota(rows[0]!);
  }

  async list(filter: QuotaFilter = {}): Promise<QuotaRule[]> {
    const { where, args } = quotaFilterSql(filter, "postgres");
    const { rows } = await query<QuotaRow>(
      this.pool,
      `SELECT * FROM quotas ${where} ORDER BY created_at, id`,
      args,
    );
    return rows.map(toQuota);
  }

  async forActor(userId: string, keyId: string | null): Promise<QuotaRule[]> {
    const { rows } = await query<QuotaRow>(
      this.pool,
      `SELECT * FROM quotas WHERE (subject_type = 'user' AND subject_id = $1)
                               OR (subject_type = 'key' AND subject_id = $2)`,
      [userId, keyId ?? ""],
    );
    return rows.map(toQuota);
  }

  async remove(id: string): Promise<boolean> {
    const { rowCount } = await query(this.pool, "DELETE FROM quotas WHERE id = $1", [id]);
    return (rowCount ?? 0) > 0;
  }
}
