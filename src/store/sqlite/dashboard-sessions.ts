/** Dashboard logins in SQLite (a single node: they survive a restart). */
import type { Db } from "../database.js";
import type { DashboardSessionRow, DashboardSessionStore } from "../store.js";

interface Row {
  id_hash: string;
  key_id: string;
  created_at: number;
  expires_at: number;
}

export const toDashboardSession = (r: Row): DashboardSessionRow => ({
  idHash: r.id_hash,
  keyId: r.key_id,
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
});

export class SqliteDashboardSessions implements DashboardSessionStore {
  constructor(private readonly db: Db) {}

  async create(row: DashboardSessionRow): Promise<void> {
    this.db
      .prepare(
        "INSERT INTO dashboard_sessions (id_hash, key_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
      )
      .run(row.idHash, row.keyId, row.createdAt, row.expiresAt);
  }

  async get(idHash: string): Promise<DashboardSessionRow | null> {
    const row = this.db
      .prepare<[string], Row>("SELECT * FROM dashboard_sessions WHERE id_hash = ?")
      .get(idHash);
    return row ? toDashboardSession(row) : null;
  }

  async delete(idHash: string): Promise<boolean> {
    return (
      this.db.prepare("DELETE FROM dashboard_sessions WHERE id_hash = ?").run(idHash).changes > 0
    );
  }

  async expire(now: number): Promise<number> {
    return this.db.prepare("DELETE FROM dashboard_sessions WHERE expires_at <= ?").run(now).changes;
  }
}
