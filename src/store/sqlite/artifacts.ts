/**
 * Artifact storage on a single node: files under `<dataDir>/artifacts/<id>` (names chosen by
 * Warden, never by the sandbox), rows in SQLite saying whose they are. The
 * owner is an execution or a session; the same name saved again by the same
 * owner replaces the old file. Everything older than the retention is removed.
 */
import { mkdirSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { WardenError } from "../../errors.js";
import { ulid } from "../../util/ids.js";
import { fromRow, type ArtifactRow, type StoredArtifact } from "../artifacts.js";
import type { Db } from "../database.js";
import type { ArtifactStore, NewArtifact } from "../store.js";

export class SqliteArtifactStore implements ArtifactStore {
  private readonly dir: string;

  constructor(
    private readonly db: Db,
    dataDir: string,
  ) {
    this.dir = join(dataDir, "artifacts");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  async save(a: NewArtifact): Promise<StoredArtifact> {
    const id = `art_${ulid()}`;
    await writeFile(join(this.dir, id), a.content, { mode: 0o600 });
    const old = this.db
      .prepare("SELECT id FROM artifacts WHERE owner_id = ? AND name = ?")
      .get(a.ownerId, a.name) as { id: string } | undefined;
    this.db
      .prepare(
        `INSERT INTO artifacts (id, owner_id, user_id, name, mime_type, size, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (owner_id, name) DO UPDATE SET id = excluded.id, mime_type = excluded.mime_type,
           size = excluded.size, created_at = excluded.created_at`,
      )
      .run(id, a.ownerId, a.userId, a.name, a.mimeType, a.content.length, Date.now());
    if (old) await rm(join(this.dir, old.id), { force: true });
    return fromRow(this.db.prepare("SELECT * FROM artifacts WHERE id = ?").get(id) as ArtifactRow);
  }

  /** An artifact with its bytes, for its owner (or an admin); NOT_FOUND otherwise. */
  async open(
    ownerId: string,
    name: string,
    userId: string,
    admin: boolean,
  ): Promise<StoredArtifact & { content: Buffer }> {
    const row = this.db
      .prepare("SELECT * FROM artifacts WHERE owner_id = ? AND name = ?")
      .get(ownerId, name) as ArtifactRow | undefined;
    if (!row || (!admin && row.user_id !== userId))
      throw new WardenError("NOT_FOUND", `artifact ${name} not found`);
    const content = await readFile(join(this.dir, row.id)).catch(() => {
      throw new WardenError("NOT_FOUND", `artifact ${name} has expired`);
    });
    return { ...fromRow(row), content };
  }

  async list(ownerId: string): Promise<StoredArtifact[]> {
    return (
      this.db
        .prepare("SELECT * FROM artifacts WHERE owner_id = ? ORDER BY name")
        .all(ownerId) as ArtifactRow[]
    ).map(fromRow);
  }

  async bytesOf(userId: string, name: string): Promise<number> {
    const row = this.db
      .prepare(
        "SELECT COALESCE(SUM(size), 0) AS bytes FROM artifacts WHERE user_id = ? AND name = ?",
      )
      .get(userId, name) as { bytes: number };
    return Number(row.bytes);
  }

  /** Removes artifacts older than `maxAgeMs`; returns how many. */
  async expire(maxAgeMs: number): Promise<number> {
    const cutoff = Date.now() - maxAgeMs;
    const old = this.db.prepare("SELECT id FROM artifacts WHERE created_at < ?").all(cutoff) as {
      id: string;
    }[];
    for (const { id } of old) await rm(join(this.dir, id), { force: true });
    this.db.prepare("DELETE FROM artifacts WHERE created_at < ?").run(cutoff);
    return old.length;
  }
}
