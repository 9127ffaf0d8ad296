/** The session registry in PostgreSQL: which worker holds each live session, cluster-wide. */
import type pg from "pg";
import type { SessionRegistry, SessionRow } from "../store.js";
import { toSession, type SessionDbRow } from "../sqlite/sessions.js";
import { query } from "./pool.js";

export class PgSessionRegistry implements SessionRegistry {
  constructor(private readonly pool: pg.Pool) {}

  async register(row: Omit<SessionRow, "endedAt" | "endReason">): Promise<void> {
    await query(
      this.pool,
      `INSERT INTO sessions (id, user_id, key_id, worker_id, language, created_at)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [row.id, row.userId, row.keyId, row.workerId, row.language, row.createdAt],
    );
  }

  /** Marks a session ended; the first reason stands. */
  async ended(id: string, reason: string, at = Date.now()): Promise<void> {
    await query(
      this.pool,
      "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
      [at, reason, id],
    );
  }

  async get(id: string): Promise<SessionRow | null> {
    const { rows } = await query<SessionDbRow>(this.pool, "SELECT * FROM sessions WHERE id = $1", [
      id,
    ]);
    return rows[0] ? toSession(rows[0]) : null;
  }

  async liveCountOf(userId: string): Promise<number> {
    const { rows } = await query<{ n: number }>(
      this.pool,
      "SELECT COUNT(*) AS n FROM sessions WHERE user_id = $1 AND ended_at IS NULL",
      [userId],
    );
    return rows[0]?.n ?? 0;
  }

  async endAllOf(workerId: string, reason: string): Promise<SessionRow[]> {
    const { rows } = await query<SessionDbRow>(
      this.pool,
      `UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE worker_id = $3 AND ended_at IS NULL
       RETURNING *`,
      [Date.now(), reason, workerId],
    );
    return rows.map(toSession);
  }

  async expire(retentionMs: number): Promise<number> {
    const { rowCount } = await query(
      this.pool,
      "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1",
      [Date.now() - retentionMs],
    );
    return rowCount ?? 0;
  }
}
