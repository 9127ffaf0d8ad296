/** The session registry in SQLite: on a single node every session's worker is this node. */
import type { Db } from "../database.js";
import type { SessionRegistry, SessionRow } from "../store.js";

export interface SessionDbRow {
  id: string;
  user_id: string;
  key_id: string | null;
  worker_id: string;
  language: string | null;
  created_at: number;
  ended_at: number | null;
  end_reason: string | null;
}

export function toSession(r: SessionDbRow): SessionRow {
  return {
    id: r.id,
    userId: r.user_id,
    keyId: r.key_id,
    workerId: r.worker_id,
    language: r.language,
    createdAt: r.created_at,
    endedAt: r.ended_at,
    endReason: r.end_reason,
  };
}

export class SqliteSessionRegistry implements SessionRegistry {
  constructor(private readonly db: Db) {}

  async register(row: Omit<SessionRow, "endedAt" | "endReason">): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO sessions (id, user_id, key_id, worker_id, language, created_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(row.id, row.userId, row.keyId, row.workerId, row.language, row.createdAt);
  }

  /** Marks a session ended; the first reason stands. */
  async ended(id: string, reason: string, at = Date.now()): Promise<void> {
    this.db
      .prepare("UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL")
      .run(at, reason, id);
  }

  async get(id: string): Promise<SessionRow | null> {
    const row = this.db
      .prepare<[string], SessionDbRow>("SELECT * FROM sessions WHERE id = ?")
      .get(id);
    return row ? toSession(row) : null;
  }

  async liveCountOf(userId: string): Promise<number> {
    return this.db
      .prepare<[string], { n: number }>(
        "SELECT COUNT(*) AS n FROM sessions WHERE user_id = ? AND ended_at IS NULL",
      )
      .get(userId)!.n;
  }

  async endAllOf(workerId: string, reason: string): Promise<SessionRow[]> {
    return this.db
      .prepare<[number, string, string], SessionDbRow>(
        `UPDATE sessions SET ended_at = ?, end_reason = ? WHERE worker_id = ? AND ended_at IS NULL
         RETURNING *`,
      )
      .all(Date.now(), reason, workerId)
      .map(toSession);
  }

  /** Removes ended sessions older than `retentionMs`. */
  async expire(retentionMs: number): Promise<number> {
    return this.db
      .prepare("DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?")
      .run(Date.now() - retentionMs).changes;
  }
}
