/** Callback deliveries in SQLite: one process owns the file, so a claim is one transaction. */
import type { Db } from "../database.js";
import { deliveryListQuery } from "../webhook-sql.js";
import {
  groupAttempts,
  MAX_ATTEMPT_ROWS,
  toDelivery,
  truncateError,
  UNFINISHED_STATUSES,
  type AttemptOutcome,
  type AttemptRow,
  type Delivery,
  type DeliveryFilter,
  type DeliveryRow,
  type DeliveryAttempt,
  type NewDelivery,
  type WebhookStore,
} from "../webhooks.js";

export class SqliteWebhookStore implements WebhookStore {
  constructor(private readonly db: Db) {}

  async add(d: NewDelivery): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO webhook_deliveries
           (id, execution_id, user_id, key_id, url, format, batch_id, state, next_attempt_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
      )
      .run(
        d.id,
        d.executionId,
        d.userId,
        d.keyId,
        d.url,
        d.format,
        d.batchId,
        d.createdAt,
        d.createdAt,
      );
  }

  async claim(owner: string, now: number, leaseMs: number, limit: number): Promise<Delivery[]> {
    const unfinished = UNFINISHED_STATUSES.map((s) => `'${s}'`).join(", ");
    return this.db.transaction(() => {
      const rows = this.db
        .prepare<[number, number, number], DeliveryRow>(
          `SELECT d.* FROM webhook_deliveries d JOIN executions e ON e.id = d.execution_id
            WHERE d.state = 'pending' AND d.next_attempt_at <= ?
              AND (d.lease_until IS NULL OR d.lease_until < ?)
              AND e.status NOT IN (${unfinished})
            ORDER BY d.next_attempt_at LIMIT ?`,
        )
        .all(now, now, limit);
      const lease = this.db.prepare(
        "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ? WHERE id = ?",
      );
      for (const r of rows) lease.run(owner, now + leaseMs, r.id);
      return rows.map(toDelivery);
    })();
  }

  async finishAttempt(id: string, owner: string, o: AttemptOutcome): Promise<boolean> {
    const a = o.attempt;
    return this.db.transaction(() => {
      const changed = this.db
        .prepare(
          `UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?,
             first_attempt_at = COALESCE(first_attempt_at, ?), last_status = ?, last_error = ?,
             delivered_at = ?, lease_owner = NULL, lease_until = NULL
           WHERE id = ? AND lease_owner = ?`,
        )
        .run(
          o.state,
          o.nextAttemptAt,
          a.at,
          a.status,
          truncateError(a.error),
          o.state === "delivered" ? a.at + a.durationMs : null,
          id,
          owner,
        ).changes;
      if (changed === 0) return false;
      if (a.attempt <= MAX_ATTEMPT_ROWS)
        this.db
          .prepare(
            `INSERT OR IGNORE INTO webhook_attempts (delivery_id, attempt, at, status, error, duration_ms)
             VALUES (?, ?, ?, ?, ?, ?)`,
          )
          .run(id, a.attempt, a.at, a.status, truncateError(a.error), a.durationMs);
      return true;
    })();
  }

  async get(id: string): Promise<Delivery | null> {
    const row = this.db
      .prepare<[string], DeliveryRow>("SELECT * FROM webhook_deliveries WHERE id = ?")
      .get(id);
    return row ? toDelivery(row) : null;
  }

  async list(filter: DeliveryFilter): Promise<Delivery[]> {
    const { sql, args } = deliveryListQuery(filter, "sqlite");
    return this.db
      .prepare<unknown[], DeliveryRow>(sql)
      .all(...args)
      .map(toDelivery);
  }

  async attempts(ids: readonly string[]): Promise<Map<string, DeliveryAttempt[]>> {
    if (ids.length === 0) return new Map();
    const rows = this.db
      .prepare<string[], AttemptRow>(
        `SELECT * FROM webhook_attempts WHERE delivery_id IN (${ids.map(() => "?").join(", ")})
          ORDER BY delivery_id, attempt`,
      )
      .all(...ids);
    return groupAttempts(rows);
  }

  async expire(retentionMs: number): Promise<number> {
    const cutoff = Date.now() - retentionMs;
    return this.db.transaction(() => {
      this.db
        .prepare(
          `DELETE FROM webhook_attempts WHERE delivery_id IN
             (SELECT id FROM webhook_deliveries WHERE created_at < ?)`,
        )
        .run(cutoff);
      return this.db.prepare("DELETE FROM webhook_deliveries WHERE created_at < ?").run(cutoff)
        .changes;
    })();
  }
}
