/**
 * API keys. Only a SHA-256 of each token is stored (tokens are 256-bit
 * random, so a fast hash is enough); the token itself is shown once, when
 * the key is made.
 */
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import { WardenError } from "../errors.js";
import { PolicyModeSchema, type PolicyMode } from "../contract/policy.js";
import type { Db } from "./database.js";

export const SCOPES = ["execute", "sessions", "admin", "delegate"] as const;
export type Scope = (typeof SCOPES)[number];
export const ScopeSchema = z.enum(SCOPES);

export interface ApiKey {
  id: string;
  name: string;
  scopes: Scope[];
  /** The user this key acts as (a delegate key may name others per request). */
  userId: string;
  createdAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
  /** Egress this key's executions may ask for (within the server's); null = the server's allowlist. */
  networkAllow: string[] | null;
  /** Static-analysis policy for this key's code; null = the server's `policy.mode`. */
  policy: PolicyMode | null;
}

interface KeyRow {
  id: string;
  name: string;
  scopes: string;
  user_id: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  network_allow: string | null;
  policy: string | null;
}

const TOKEN_PREFIX = "wdn_";

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function toKey(row: KeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes.split(",").filter(Boolean) as Scope[],
    userId: row.user_id,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
    networkAllow: row.network_allow ? (JSON.parse(row.network_allow) as string[]) : null,
    policy: (row.policy as PolicyMode | null) ?? null,
  };
}

export const USER_ID_PATTERN = /^[A-Za-z0-9._@:-]{1,128}$/;

/**
 * What makes a key, for `warden keys create` and `POST /api/sandbox/keys`
 * alike (src/executions/new-key.ts checks its egress list against the server's).
 */
export const NewKeySchema = z
  .object({
    name: z.string().min(1).max(128).describe("A label for people."),
    userId: z
      .string()
      .regex(USER_ID_PATTERN, `userId: must match ${USER_ID_PATTERN.source}`)
      .optional()
      .describe("The user the key acts as. @default name"),
    scopes: z.array(ScopeSchema).min(1).max(SCOPES.length),
    networkAllow: z
      .array(z.string().min(1).max(253))
      .max(100)
      .nullable()
      .optional()
      .describe("Egress this key's runs may ask for, within the server's allowlist."),
    policy: PolicyModeSchema.nullable()
      .optional()
      .describe("Static-analysis policy for this key's code; null = the server's."),
  })
  .strict();
export type NewKey = z.infer<typeof NewKeySchema>;

/** How stale a key's stored last use may be. */
const LAST_USED_RESOLUTION_MS = 1000;

export class KeyStore {
  private readonly byHash;
  private readonly touch;

  constructor(private readonly db: Db) {
    this.byHash = db.prepare<[string], KeyRow>(
      "SELECT * FROM api_keys WHERE hash = ? AND revoked_at IS NULL",
    );
    this.touch = db.prepare<[number, string]>("UPDATE api_keys SET last_used_at = ? WHERE id = ?");
  }

  /** Makes a key; returns it with its token, which is never stored or shown again. */
  create(options: {
    name: string;
    scopes: Scope[];
    userId: string;
    token?: string;
    id?: string;
    networkAllow?: string[] | null;
    policy?: PolicyMode | null;
  }): {
    key: ApiKey;
    token: string;
  } {
    if (!USER_ID_PATTERN.test(options.userId))
      throw new WardenError("INVALID_REQUEST", `userId: must match ${USER_ID_PATTERN.source}`);
    if (options.scopes.length === 0)
      throw new WardenError("INVALID_REQUEST", "scopes: at least one scope is needed");
    const id = options.id ?? `key_${randomBytes(6).toString("hex")}`;
    const token = options.token ?? `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
    const now = Date.now();
    this.db
      .prepare(
        "INSERT INTO api_keys (id, name, hash, scopes, user_id, created_at, network_allow, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .run(
        id,
        options.name,
        hashToken(token),
        [...new Set(options.scopes)].join(","),
        options.userId,
        now,
        options.networkAllow ? JSON.stringify(options.networkAllow) : null,
        options.policy ?? null,
      );
    return { key: this.get(id)!, token };
  }

  /**
   * The live key behind a token, or null. Its last use is stored to the
   * second: a commit per request would cost a busy key more than the request.
   */
  authenticate(token: string): ApiKey | null {
    const row = this.byHash.get(hashToken(token));
    if (!row) return null;
    const now = Date.now();
    if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_RESOLUTION_MS) {
      this.touch.run(now, row.id);
    }
    return toKey(row);
  }

  get(id: string): ApiKey | null {
    const row = this.db.prepare<[string], KeyRow>("SELECT * FROM api_keys WHERE id = ?").get(id);
    return row ? toKey(row) : null;
  }

  list(): ApiKey[] {
    return this.db
      .prepare<[], KeyRow>("SELECT * FROM api_keys ORDER BY created_at")
      .all()
      .map(toKey);
  }

  revoke(id: string): boolean {
    return (
      this.db
        .prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .run(Date.now(), id).changes > 0
    );
  }

  hasAdmin(): boolean {
    return this.list().some((k) => k.revokedAt === null && k.scopes.includes("admin"));
  }

  /**
   * Makes sure the admin token from the environment works (for automation):
   * its key is created, or re-pointed at the new token when the variable changed.
   */
  ensureEnvAdmin(token: string): void {
    const id = "key_env_admin";
    const existing = this.get(id);
    if (existing) {
      this.db
        .prepare("UPDATE api_keys SET hash = ?, revoked_at = NULL WHERE id = ?")
        .run(hashToken(token), id);
      return;
    }
    this.create({
      id,
      name: "admin (WARDEN_ADMIN_TOKEN)",
      scopes: [...SCOPES],
      userId: "admin",
      token,
    });
  }
}
