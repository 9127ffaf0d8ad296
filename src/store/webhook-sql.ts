/** SQL both stores share for callback deliveries (placeholders in each dialect). */
import type { DeliveryFilter } from "./webhooks.js";

/** The WHERE clause, arguments and LIMIT of a delivery listing, newest first. */
export function deliveryListQuery(
  filter: DeliveryFilter,
  dialect: "sqlite" | "postgres",
): { sql: string; args: (string | number)[] } {
  const args: (string | number)[] = [];
  const p = (value: string | number): string => {
    args.push(value);
    return dialect === "sqlite" ? "?" : `$${args.length}`;
  };
  const where: string[] = [];
  if (filter.userId !== undefined) where.push(`user_id = ${p(filter.userId)}`);
  if (filter.executionId !== undefined) where.push(`execution_id = ${p(filter.executionId)}`);
  if (filter.state !== undefined) where.push(`state = ${p(filter.state)}`);
  const before = filter.before;
  if (before) {
    const at = p(before.createdAt);
    const at2 = p(before.createdAt);
    where.push(`(created_at < ${at} OR (created_at = ${at2} AND id < ${p(before.id)}))`);
  }
  const limit = p(filter.limit);
  return {
    sql: `SELECT * FROM webhook_deliveries ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
          ORDER BY created_at DESC, id DESC LIMIT ${limit}`,
    args,
  };
}
