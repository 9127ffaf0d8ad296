/** Usage rows and quota rules in SQLite (shapes and SQL in src/store/usage.ts, quotas.ts). */
import type { Db } from "../database.js";
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
  HOUR_MS,
  subjectSumSql,
  toPeriodRow,
  upsertSql,
  usageQuerySql,
  type UsageDelta,
  type UsagePeriodRow,
  type UsageQuery,
  type UsageTotals,
} from "../usage.js";

export class SqliteUsageStore implements UsageStore {
  private readonly upsert;

  constructor(private readonly db: Db) {
    this.upsert = db.prepare(upsertSql("sqlite"));
  }

  /** Adds a delta now: inside `records.finished`'s transaction it joins it. */
  addNow(delta: UsageDelta): void {
    this.upsert.run(...deltaParams(delta));
  }

  async add(delta: UsageDelta): Promise<void> {
    this.addNow(delta);
  }

  async query(q: UsageQuery): Promise<UsagePeriodRow[]> {
    const { sql, args } = usageQuerySql(q, "sqlite");
    return this.db
      .prepare<(string | number)[], Record<string, unknown>>(sql)
      .all(...args)
      .map(toPeriodRow);
  }

  async totals(
    subject: { userId: string } | { keyId: string },
    fromMs: number,
    toMs: number,
  ): Promise<UsageTotals> {
    const id = "keyId" in subject ? subject.keyId : subject.userId;
    const sql = subjectSumSql("keyId" in subject ? { keyId: id } : { userId: id }, "sqlite");
    const row = this.db
      .prepare<[string, number, number], Record<string, unknown>>(sql)
      .get(id, fromMs - (fromMs % HOUR_MS), toMs)!;
    const { period: _period, ...totals } = toPeriodRow({ ...row, period: 0 });
    return totals;
  }

  async expire(retentionMs: number): Promise<number> {
    return this.db.prepare("DELETE FROM usage_hourly WHERE hour < ?").run(Date.now() - retentionMs)
      .changes;
  }
}

export class SqliteQuotaStore implements QuotaStore {
  constructor(private readonly db: Db) {}

  async put(q: NewQuota): Promise<QuotaRule> {
    this.db
      .prepare(
        `INSERT INTO quotas (id, subject_type, subject_id, metric, period, quota_limit, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (subject_type, subject_id, metric, period) DO UPDATE SET quota_limit = excluded.quota_limit`,
      )
      .run(newQuotaId(), q.subjectType, q.subjectId, q.metric, q.period, q.limit, Date.now());
    const row = this.db
      .prepare<[string, string, string, string], QuotaRow>(
        "SELECT * FROM quotas WHERE subject_type = ? AND subject_id = ? AND metric = ? AND period = ?",
      )
      .get(q.subjectType, q.subjectId, q.metric, q.period)!;
    return toQuota(row);
  }

  async list(filter: QuotaFilter = {}): Promise<QuotaRule[]> {
    const { where, args } = quotaFilterSql(filter, "sqlite");
    return this.db
      .prepare<string[], QuotaRow>(`SELECT * FROM quotas ${where} ORDER BY created_at, id`)
      .all(...args)
      .map(toQuota);
  }

  async forActor(userId: string, keyId: string | null): Promise<QuotaRule[]> {
    return this.db
      .prepare<[string, string], QuotaRow>(
        `SELECT * FROM quotas WHERE (subject_type = 'user' AND subject_id = ?)
                                 OR (subject_type = 'key' AND subject_id = ?)`,
      )
      .all(userId, keyId ?? "")
      .map(toQuota);
  }

  async remove(id: string): Promise<boolean> {
    return this.db.prepare("DELETE FROM quotas WHERE id = ?").run(id).changes > 0;
  }
}
