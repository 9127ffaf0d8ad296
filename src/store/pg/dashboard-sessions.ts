/** Dashboard logins in PostgreSQL: a login on one API node is valid on every other. */
import type pg from "pg";
import type { DashboardSessionRow, DashboardSessionStore } from "../store.js";
import { toDashboardSession } from "../sqlite/dashboard-sessions.js";
import { query } from "./pool.js";

export class PgDashboardSessions implements DashboardSessionStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(row: DashboardSessionRow): Promise<void> {
    await query(
      this.pool,
      "INSERT INTO dashboard_sessions (id_hash, key_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
      [row.idHash, row.keyId, row.createdAt, row.expiresAt],
    );
  }

  async get(idHash: string): Promise<DashboardSessionRow | null> {
    const { rows } = await query<Parameters<typeof toDashboardSession>[0]>(
      this.pool,
      "SELECT * FROM dashboard_sessions WHERE id_hash = $1",
      [idHash],
    );
    return rows[0] ? toDashboardSession(rows[0]) : null;
  }

  async delete(idHash: string): Promise<boolean> {
    const r = await query(this.pool, "DELETE FROM dashboard_sessions WHERE id_hash = $1", [idHash]);
    return (r.rowCount ?? 0) > 0;
  }

  async expire(now: number): Promise<number> {
    const r = await query(this.pool, "DELETE FROM dashboard_sessions WHERE expires_at <= $1", [
      now,
    ]);
    return r.rowCount ?? 0;
  }
}
