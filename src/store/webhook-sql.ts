/** SQL both stores share for callback deliveries (placeholders in each dialect). */
import { Where } from "./audit-search.js";
import type { DeliveryFilter } from "./webhooks.js";

/** The WHERE clause, arguments and LIMIT of a delivery listing, newest first. */
export function deliveryListQuery(
  filter: DeliveryFilter,
  dialect: "sqlite" | "postgres",
): { sql: string; args: (string | number)[] } {
  const w = new Where(dialect);
  if (filter.userId !== undefined) w.add(`user_id = ${w.p(filter.userId)}`);
  if (filter.executionId !== undefined) w.add(`execution_id = ${w.p(filter.executionId)}`);
  if (filter.state !== undefined) w.add(`state = ${w.p(filter.state)}`);
  const before = filter.before;
  if (before)
    w.add(
      `(created_at < ${w.p(before.createdAt)} OR (created_at = ${w.p(before.createdAt)} AND id < ${w.p(before.id)}))`,
    );
  return {
    sql: `SELECT * FROM webhook_deliveries ${w.sql}
          ORDER BY created_at DESC, id DESC LIMIT ${w.p(filter.limit)}`,
    args: w.args,
  };
}
