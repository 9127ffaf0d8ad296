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

export class SqliteUsageStore implements UsageStore {
  private readonly upsert;
  /** A quota check's reads (every admission that has rules): prepared once. */
  private readonly userSum;
  private readonly keySum;

  constructor(private readonly db: Db) {
    this.upsert = db.prepare(upsertSql("sqlite"));
    const sum = (subject: { userId: string } | { keyId: string }) =>
      db.prepare<[string, number, number], Record<string, unknown>>(
        subjectSumSql(subject, "sqlite"),
      );
    this.userSum = sum({ userId: "" });
    this.keySum = sum({ keyId: "" });
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
    const [id, sum] =
      "keyId" in subject ? [subject.keyId, this.keySum] : [subject.userId, this.userSum];
    const row = sum.get(id, hourOf(fromMs), toMs)!;
    const { period: _period, ...totals } = toPeriodRow({ ...row, period: 0 });
    return totals;
  }

  async expire(retentionMs: number): Promise<number> {
    return this.db.prepare("DELETE FROM usage_hourly WHERE hour < ?").run(Date.now() - retentionMs)
      .changes;
  }
}

export class SqliteQuotaStore implements QuotaStore {
  /** Read at every submission: prepared once. */
  private readonly selectForActor;

  constructor(private readonly db: Db) {
    this.selectForActor = db.prepare<[string, string], QuotaRow>(
      `SELECT * FROM quotas WHERE (subject_type = 'user' AND subject_id = ?)
                               OR (subject_type = 'key' AND subject_id = ?)`,
    );
  }

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
    return this.selectForActor.all(userId, keyId ?? "").map(toQuota);
  }

  async remove(id: string): Promise<boolean> {
    return this.db.prepare("DELETE FROM quotas WHERE id = ?").run(id).changes > 0;
  }
}
