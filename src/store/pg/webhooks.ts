/**
 * Callback deliveries in PostgreSQL. Several API nodes claim from the same
 * table: `FOR UPDATE SKIP LOCKED` keeps two claims from taking the same row,
 * and the lease keeps a row taken while it is being sent (a node that dies
 * mid-send leaves a lease that runs out, and the delivery is tried again).
 * An attempt is recorded only by the lease's holder.
 */
import type pg from "pg";
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
  type DeliveryAttempt,
  type DeliveryFilter,
  type DeliveryRow,
  type NewDelivery,
  type WebhookStore,
} from "../webhooks.js";
import { query, transaction } from "./pool.js";

export class PgWebhookStore implements WebhookStore {
  constructor(private readonly pool: pg.Pool) {}

  async add(d: NewDelivery): Promise<void> {
    await query(
      this.pool,
      `INSERT INTO webhook_deliveries
         (id, execution_id, user_id, key_id, url, format, batch_id, state, next_attempt_at, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8)`,
      [d.id, d.executionId, d.userId, d.keyId, d.url, d.format, d.batchId, d.createdAt],
    );
  }

  async claim(owner: string, now: number, leaseMs: number, limit: number): Promise<Delivery[]> {
    const { rows } = await query<DeliveryRow>(
      this.pool,
      `UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2
        WHERE id IN (
          SELECT d.id FROM webhook_deliveries d JOIN executions e ON e.id = d.execution_id
           WHERE d.state = 'pending' AND d.next_attempt_at <= $3
             AND (d.lease_until IS NULL OR d.lease_until < $3)
             AND e.status <> ALL($4::text[])
           ORDER BY d.next_attempt_at LIMIT $5
           FOR UPDATE OF d SKIP LOCKED)
        RETURNING *`,
      [owner, now + leaseMs, now, [...UNFINISHED_STATUSES], limit],
    );
    return rows.map(toDelivery);
  }

  async finishAttempt(id: string, owner: string, o: AttemptOutcome): Promise<boolean> {
    const a = o.attempt;
    const error = truncateError(a.error);
    return transaction(this.pool, async (client) => {
      const { rowCount } = await query(
        client,
        `UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2,
           first_attempt_at = COALESCE(first_attempt_at, $3), last_status = $4, last_error = $5,
           delivered_at = $6, lease_owner = NULL, lease_until = NULL
         WHERE id = $7 AND lease_owner = $8`,
        [
          o.state,
          o.nextAttemptAt,
          a.at,
          a.status,
          error,
          o.state === "delivered" ? a.at + a.durationMs : null,
          id,
          owner,
        ],
      );
      if ((rowCount ?? 0) === 0) return false;
      if (a.attempt <= MAX_ATTEMPT_ROWS)
        await query(
          client,
          `INSERT INTO webhook_attempts (delivery_id, attempt, at, status, error, duration_ms)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
          [id, a.attempt, a.at, a.status, error, a.durationMs],
        );
      return true;
    });
  }

  async get(id: string): Promise<Delivery | null> {
    const { rows } = await query<DeliveryRow>(
      this.pool,
      "SELECT * FROM webhook_deliveries WHERE id = $1",
      [id],
    );
    return rows[0] ? toDelivery(rows[0]) : null;
  }

  async list(filter: DeliveryFilter): Promise<Delivery[]> {
    const { sql, args } = deliveryListQuery(filter, "postgres");
    const { rows } = await query<DeliveryRow>(this.pool, sql, args);
    return rows.map(toDelivery);
  }

  async attempts(ids: readonly string[]): Promise<Map<string, DeliveryAttempt[]>> {
    if (ids.length === 0) return new Map();
    const { rows } = await query<AttemptRow>(
      this.pool,
      "SELECT * FROM webhook_attempts WHERE delivery_id = ANY($1::text[]) ORDER BY delivery_id, attempt",
      [[...ids]],
    );
    return groupAttempts(rows);
  }

  async expire(retentionMs: number): Promise<number> {
    const cutoff = Date.now() - retentionMs;
    return transaction(this.pool, async (client) => {
      await query(
        client,
        `DELETE FROM webhook_attempts WHERE delivery_id IN
           (SELECT id FROM webhook_deliveries WHERE created_at < $1)`,
        [cutoff],
      );
      const { rowCount } = await query(
        client,
        "DELETE FROM webhook_deliveries WHERE created_at < $1",
        [cutoff],
      );
      return rowCount ?? 0;
    });
  }
}
