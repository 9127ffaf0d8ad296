/**
 * API keys in PostgreSQL. `authenticate` runs on every request, so each node
 * keeps the keys it has seen for a few seconds: a revoke on this node drops
 * its entries at once; on another node a revoked key works until its entry
 * is older than KEY_CACHE_TTL_MS (docs/store.md). Unknown tokens are never
 * cached: a key just made elsewhere works at once.
 */
import type pg from "pg";
import {
  ENV_ADMIN_KEY_ID,
  envAdminKey,
  hashToken,
  LAST_USED_RESOLUTION_MS,
  newKeyRow,
  newToken,
  patchedRow,
  newWebhookSecret,
  toKey,
  type ApiKey,
  type KeyRow,
} from "../keys.js";
import type { KeyPatch, KeyStore, NewKeyOptions } from "../store.js";
import { query } from "./pool.js";

/** How long a key read from the database is trusted: the cross-node revoke delay. */
export const KEY_CACHE_TTL_MS = 5_000;
/** Entries at most; the oldest goes first (a flood of distinct keys cannot grow memory). */
export const KEY_CACHE_MAX = 10_000;

export class PgKeyStore implements KeyStore {
  /** Token hash → key and when it was read; Map order is insertion order (oldest first). */
  private readonly cache = new Map<string, { key: ApiKey; at: number }>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly ttlMs = KEY_CACHE_TTL_MS,
    private readonly maxEntries = KEY_CACHE_MAX,
  ) {}

  async create(options: NewKeyOptions): Promise<{ key: ApiKey; token: string }> {
    const k = newKeyRow(options);
    const { rows } = await query<KeyRow>(
      this.pool,
      `INSERT INTO api_keys (id, name, hash, scopes, user_id, created_at, network_allow, policy,
         isolation_default, isolation_forced)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
      [
        k.id,
        options.name,
        k.hash,
        k.scopes,
        options.userId,
        k.createdAt,
        k.networkAllow,
        k.policy,
        k.isolationDefault,
        k.isolationForced,
      ],
    );
    return { key: toKey(rows[0]!), token: k.token };
  }

  async authenticate(token: string): Promise<ApiKey | null> {
    const hash = hashToken(token);
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (hit && now - hit.at < this.ttlMs) return { ...hit.key };
    if (hit) this.cache.delete(hash);
    const { rows } = await query<KeyRow>(
      this.pool,
      "SELECT * FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
      [hash],
    );
    const row = rows[0];
    if (!row) return null;
    // Its last use, to the second at best (once per cache period per node): not worth a wait.
    if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_RESOLUTION_MS)
      query(this.pool, "UPDATE api_keys SET last_used_at = $1 WHERE id = $2", [now, row.id]).catch(
        () => undefined,
      );
    const key = toKey(row);
    if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(hash, { key, at: now });
    return { ...key };
  }

  async get(id: string): Promise<ApiKey | null> {
    const { rows } = await query<KeyRow>(this.pool, "SELECT * FROM api_keys WHERE id = $1", [id]);
    return rows[0] ? toKey(rows[0]) : null;
  }

  async list(): Promise<ApiKey[]> {
    const { rows } = await query<KeyRow>(this.pool, "SELECT * FROM api_keys ORDER BY created_at");
    return rows.map(toKey);
  }

  /** Forgets a key on this node: its next use reads the database. */
  private drop(id: string): void {
    for (const [hash, entry] of this.cache) if (entry.key.id === id) this.cache.delete(hash);
  }

  async revoke(id: string): Promise<boolean> {
    this.drop(id);
    const { rowCount } = await query(
      this.pool,
      "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
      [Date.now(), id],
    );
    return (rowCount ?? 0) > 0;
  }

  async update(id: string, patch: KeyPatch): Promise<ApiKey | null> {
    this.drop(id);
    const { rows } = await query<KeyRow>(
      this.pool,
      "SELECT * FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
      [id],
    );
    if (!rows[0]) return null;
    const next = patchedRow(rows[0], patch);
    const updated = await query<KeyRow>(
      this.pool,
      `UPDATE api_keys SET name = $2, scopes = $3, network_allow = $4, policy = $5,
         isolation_default = $6, isolation_forced = $7
       WHERE id = $1 AND revoked_at IS NULL RETURNING *`,
      [
        id,
        next.name,
        next.scopes,
        next.networkAllow,
        next.policy,
        next.isolationDefault,
        next.isolationForced,
      ],
    );
    this.drop(id);
    return updated.rows[0] ? toKey(updated.rows[0]) : null;
  }

  /**
   * The old token is dropped from this node's cache at once; another node
   * that read it less than KEY_CACHE_TTL_MS ago accepts it until then, as
   * for a revoke (docs/usage.md).
   */
  async rotate(id: string): Promise<{ key: ApiKey; token: string } | null> {
    this.drop(id);
    const { token, hash } = newToken();
    const { rows } = await query<KeyRow>(
      this.pool,
      "UPDATE api_keys SET hash = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING *",
      [id, hash],
    );
    this.drop(id);
    return rows[0] ? { key: toKey(rows[0]), token } : null;
  }

  async hasAdmin(): Promise<boolean> {
    return (await this.list()).some((k) => k.revokedAt === null && k.scopes.includes("admin"));
  }

  /** As SQLite's: the key is created, or re-pointed at the new token. Safe when nodes start together. */
  async ensureEnvAdmin(token: string): Promise<void> {
    this.drop(ENV_ADMIN_KEY_ID);
    const k = newKeyRow(envAdminKey(token));
    await query(
      this.pool,
      `INSERT INTO api_keys (id, name, hash, scopes, user_id, created_at, network_allow, policy)
       VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)
       ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, revoked_at = NULL`,
      [k.id, envAdminKey(token).name, k.hash, k.scopes, "admin", k.createdAt],
    );
  }

  /** Made once, by whichever node asks first: COALESCE keeps a secret another node just set. */
  async webhookSecret(id: string): Promise<string | null> {
    const { rows } = await query<{ webhook_secret: string }>(
      this.pool,
      `UPDATE api_keys SET webhook_secret = COALESCE(webhook_secret, $1) WHERE id = $2
       RETURNING webhook_secret`,
      [newWebhookSecret(), id],
    );
    return rows[0]?.webhook_secret ?? null;
  }

  async rotateWebhookSecret(id: string): Promise<string | null> {
    const { rows } = await query<{ webhook_secret: string }>(
      this.pool,
      "UPDATE api_keys SET webhook_secret = $1 WHERE id = $2 RETURNING webhook_secret",
      [newWebhookSecret(), id],
    );
    return rows[0]?.webhook_secret ?? null;
  }
}
