/**
 * Artifacts in PostgreSQL, bytes included (`bytea`): any API node serves a
 * download even when the worker that made it is gone, and a row and its bytes
 * commit or vanish together. Artifacts are bounded (maxArtifactSizeMB, per
 * run totals) and expire after hours, so the table stays small.
 */
import type pg from "pg";
import { fromRow, type ArtifactRow, type StoredArtifact } from "../artifacts.js";
import { WardenError } from "../../errors.js";
import { ulid } from "../../util/ids.js";
import type { ArtifactStore, NewArtifact } from "../store.js";
import { query } from "./pool.js";

/** Every column but the bytes. */
const META = "id, owner_id, user_id, name, mime_type, size, created_at";

export class PgArtifactStore implements ArtifactStore {
  constructor(private readonly pool: pg.Pool) {}

  /** The same name saved again by the same owner replaces the old artifact. */
  async save(a: NewArtifact): Promise<StoredArtifact> {
    const { rows } = await query<ArtifactRow>(
      this.pool,
      `INSERT INTO artifacts (id, owner_id, user_id, name, mime_type, size, created_at, content)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (owner_id, name) DO UPDATE SET id = excluded.id, mime_type = excluded.mime_type,
         size = excluded.size, created_at = excluded.created_at, content = excluded.content
       RETURNING ${META}`,
      [
        `art_${ulid()}`,
        a.ownerId,
        a.userId,
        a.name,
        a.mimeType,
        a.content.length,
        Date.now(),
        a.content,
      ],
    );
    return fromRow(rows[0]!);
  }

  async open(
    ownerId: string,
    name: string,
    userId: string,
    admin: boolean,
  ): Promise<StoredArtifact & { content: Buffer }> {
    const { rows } = await query<ArtifactRow & { content: Buffer | null }>(
      this.pool,
      "SELECT * FROM artifacts WHERE owner_id = $1 AND name = $2",
      [ownerId, name],
    );
    const row = rows[0];
    if (!row || (!admin && row.user_id !== userId))
      throw new WardenError("NOT_FOUND", `artifact ${name} not found`);
    if (!row.content) throw new WardenError("NOT_FOUND", `artifact ${name} has expired`);
    return { ...fromRow(row), content: row.content };
  }

  async list(ownerId: string): Promise<StoredArtifact[]> {
    const { rows } = await query<ArtifactRow>(
      this.pool,
      `SELECT ${META} FROM artifacts WHERE owner_id = $1 ORDER BY name COLLATE "C"`,
      [ownerId],
    );
    return rows.map(fromRow);
  }

  async bytesOf(userId: string, name: string): Promise<number> {
    const { rows } = await query<{ bytes: string }>(
      this.pool,
      "SELECT COALESCE(SUM(size), 0) AS bytes FROM artifacts WHERE user_id = $1 AND name = $2",
      [userId, name],
    );
    return Number(rows[0]?.bytes ?? 0);
  }

  async expire(maxAgeMs: number): Promise<number> {
    const { rowCount } = await query(this.pool, "DELETE FROM artifacts WHERE created_at < $1", [
      Date.now() - maxAgeMs,
    ]);
    return rowCount ?? 0;
  }
}
