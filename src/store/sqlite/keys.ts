/**
 * API keys in SQLite. Only a SHA-256 of each token is stored (tokens are
 * 256-bit random, so a fast hash is enough); the token itself is shown once,
 * when the key is made.
 */
import type { Db } from "../database.js";
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

export class SqliteKeyStore implements KeyStore {
  private readonly byHash;
  private readonly touch;
  private readonly byId;

  constructor(private readonly db: Db) {
    this.byHash = db.prepare<[string], KeyRow>(
      "SELECT * FROM api_keys WHERE hash = ? AND revoked_at IS NULL",
    );
    this.touch = db.prepare<[number, string]>("UPDATE api_keys SET last_used_at = ? WHERE id = ?");
    this.byId = db.prepare<[string], KeyRow>("SELECT * FROM api_keys WHERE id = ?");
  }

  private createNow(options: NewKeyOptions): { key: ApiKey; token: string } {
    const k = newKeyRow(options);
    this.db
      .prepare(
        "INSERT INTO api_keys (id, name, hash, scopes, user_id, created_at, network_allow, policy, isolation_default, isolation_forced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .run(
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
      );
    return { key: toKey(this.byId.get(k.id)!), token: k.token };
  }

  async create(options: NewKeyOptions): Promise<{ key: ApiKey; token: string }> {
    return this.createNow(options);
  }

  /**
   * The live key behind a token, or null. Its last use is stored to the
   * second: a commit per request would cost a busy key more than the request.
   */
  async authenticate(token: string): Promise<ApiKey | null> {
    const row = this.byHash.get(hashToken(token));
    if (!row) return null;
    const now = Date.now();
    if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_RESOLUTION_MS) {
      this.touch.run(now, row.id);
    }
    return toKey(row);
  }

  async get(id: string): Promise<ApiKey | null> {
    const row = this.byId.get(id);
    return row ? toKey(row) : null;
  }

  private listNow(): ApiKey[] {
    return this.db
      .prepare<[], KeyRow>("SELECT * FROM api_keys ORDER BY created_at")
      .all()
      .map(toKey);
  }

  async list(): Promise<ApiKey[]> {
    return this.listNow();
  }

  async revoke(id: string): Promise<boolean> {
    return (
      this.db
        .prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .run(Date.now(), id).changes > 0
    );
  }

  async hasAdmin(): Promise<boolean> {
    return this.listNow().some((k) => k.revokedAt === null && k.scopes.includes("admin"));
  }

  private live(id: string): KeyRow | null {
    const row = this.byId.get(id);
    return row && row.revoked_at === null ? row : null;
  }

  async update(id: string, patch: KeyPatch): Promise<ApiKey | null> {
    const row = this.live(id);
    if (!row) return null;
    const next = patchedRow(row, patch);
    this.db
      .prepare(
        "UPDATE api_keys SET name = ?, scopes = ?, network_allow = ?, policy = ?, isolation_default = ?, isolation_forced = ? WHERE id = ? AND revoked_at IS NULL",
      )
      .run(
        next.name,
        next.scopes,
        next.networkAllow,
        next.policy,
        next.isolationDefault,
        next.isolationForced,
        id,
      );
    return toKey(this.byId.get(id)!);
  }

  /** Keys are read on every request here (no cache): the old token fails from the next one. */
  async rotate(id: string): Promise<{ key: ApiKey; token: string } | null> {
    if (!this.live(id)) return null;
    const { token, hash } = newToken();
    const changed = this.db
      .prepare("UPDATE api_keys SET hash = ? WHERE id = ? AND revoked_at IS NULL")
      .run(hash, id).changes;
    return changed > 0 ? { key: toKey(this.byId.get(id)!), token } : null;
  }

  /**
   * Makes sure the admin token from the environment works (for automation):
   * its key is created, or re-pointed at the new token when the variable changed.
   */
  async ensureEnvAdmin(token: string): Promise<void> {
    if (this.byId.get(ENV_ADMIN_KEY_ID)) {
      this.db
        .prepare("UPDATE api_keys SET hash = ?, revoked_at = NULL WHERE id = ?")
        .run(hashToken(token), ENV_ADMIN_KEY_ID);
      return;
    }
    this.createNow(envAdminKey(token));
  }

  async webhookSecret(id: string): Promise<string | null> {
    this.db
      .prepare("UPDATE api_keys SET webhook_secret = ? WHERE id = ? AND webhook_secret IS NULL")
      .run(newWebhookSecret(), id);
    return this.secretOf(id);
  }

  async rotateWebhookSecret(id: string): Promise<string | null> {
    this.db
      .prepare("UPDATE api_keys SET webhook_secret = ? WHERE id = ?")
      .run(newWebhookSecret(), id);
    return this.secretOf(id);
  }

  private secretOf(id: string): string | null {
    const row = this.db
      .prepare<[string], { webhook_secret: string | null }>(
        "SELECT webhook_secret FROM api_keys WHERE id = ?",
      )
      .get(id);
    return row?.webhook_secret ?? null;
  }
}
