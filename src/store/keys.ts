/**
 * API keys. Only a SHA-256 of each token is stored (tokens are 256-bit
 * random, so a fast hash is enough); the token itself is shown once, when
 * the key is made.
 */
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import { WardenError } from "../errors.js";
import { PolicyModeSchema, type PolicyMode } from "../contract/policy.js";
import type { NewKeyOptions } from "./store.js";
import { IsolationSchema, type Isolation } from "../contract/isolation.js";
import { checkKeyIsolation } from "../contract/key-isolation.js";

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
  /** The isolation tier of this key's runs when a request names none; null = the server's. */
  isolationDefault: Isolation | null;
  /** The key's runs are always in `isolationDefault` (gvisor): a namespaces request is refused. */
  isolationForced: boolean;
}

export interface KeyRow {
  id: string;
  name: string;
  scopes: string;
  user_id: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  network_allow: string | null;
  policy: string | null;
  isolation_default: string | null;
  isolation_forced: number;
}

const TOKEN_PREFIX = "wdn_";

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export function toKey(row: KeyRow): ApiKey {
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
    isolationDefault: (row.isolation_default as Isolation | null) ?? null,
    isolationForced: row.isolation_forced === 1,
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
    isolationDefault: IsolationSchema.nullable()
      .optional()
      .describe("The tier of this key's runs when a request names none; null = the server's."),
    isolationForced: z
      .boolean()
      .optional()
      .describe(
        "Always run in isolationDefault (gvisor only): a request asking namespaces is refused with ISOLATION_FORBIDDEN.",
      ),
  })
  .strict();
export type NewKey = z.infer<typeof NewKeySchema>;

/** How stale a key's stored last use may be. */
export const LAST_USED_RESOLUTION_MS = 1000;

/** The key `WARDEN_ADMIN_TOKEN` works through. */
export const ENV_ADMIN_KEY_ID = "key_env_admin";

/** A new key's checked fields: its id, its token and the row values both stores insert. */
export function newKeyRow(options: NewKeyOptions): {
  id: string;
  token: string;
  hash: string;
  scopes: string;
  createdAt: number;
  networkAllow: string | null;
  policy: string | null;
  isolationDefault: string | null;
  isolationForced: number;
} {
  if (!USER_ID_PATTERN.test(options.userId))
    throw new WardenError("INVALID_REQUEST", `userId: must match ${USER_ID_PATTERN.source}`);
  if (options.scopes.length === 0)
    throw new WardenError("INVALID_REQUEST", "scopes: at least one scope is needed");
  checkKeyIsolation(options);
  const token = options.token ?? randomToken();
  return {
    id: options.id ?? `key_${randomBytes(6).toString("hex")}`,
    token,
    hash: hashToken(token),
    scopes: [...new Set(options.scopes)].join(","),
    createdAt: Date.now(),
    networkAllow: options.networkAllow ? JSON.stringify(options.networkAllow) : null,
    policy: options.policy ?? null,
    isolationDefault: options.isolationDefault ?? null,
    isolationForced: options.isolationForced ? 1 : 0,
  };
}

/** A new callback signing secret: 32 random bytes, hex. */
export function newWebhookSecret(): string {
  return randomBytes(32).toString("hex");
}

/** What makes the environment's admin key. */
export function envAdminKey(token: string): NewKeyOptions {
  return {
    id: ENV_ADMIN_KEY_ID,
    name: "admin (WARDEN_ADMIN_TOKEN)",
    scopes: [...SCOPES],
    userId: "admin",
    token,
  };
}

/** What `PATCH /api/sandbox/keys/:id` and `warden keys update` may change. */
export const KeyPatchSchema = NewKeySchema.pick({
  name: true,
  scopes: true,
  networkAllow: true,
  policy: true,
  isolationDefault: true,
  isolationForced: true,
})
  .partial()
  .strict()
  .refine((p) => Object.keys(p).length > 0, "body: name at least one field to change");

/** The column values of a patched key: what the patch sets, the rest as it was. */
export function patchedRow(
  row: KeyRow,
  patch: {
    name?: string | undefined;
    scopes?: readonly Scope[] | undefined;
    networkAllow?: string[] | null | undefined;
    policy?: PolicyMode | null | undefined;
    isolationDefault?: Isolation | null | undefined;
    isolationForced?: boolean | undefined;
  },
): {
  name: string;
  scopes: string;
  networkAllow: string | null;
  policy: string | null;
  isolationDefault: string | null;
  isolationForced: number;
} {
  if (patch.scopes !== undefined && patch.scopes.length === 0)
    throw new WardenError("INVALID_REQUEST", "scopes: at least one scope is needed");
  const isolationDefault =
    patch.isolationDefault === undefined
      ? (row.isolation_default as Isolation | null)
      : patch.isolationDefault;
  // Un-forcing is explicit: clearing the default alone would leave a forced key with no tier.
  const isolationForced = patch.isolationForced ?? row.isolation_forced === 1;
  checkKeyIsolation({ isolationDefault, isolationForced });
  return {
    name: patch.name ?? row.name,
    scopes: patch.scopes ? [...new Set(patch.scopes)].join(",") : row.scopes,
    networkAllow:
      patch.networkAllow === undefined
        ? row.network_allow
        : patch.networkAllow?.length
          ? JSON.stringify(patch.networkAllow)
          : null,
    policy: patch.policy === undefined ? row.policy : patch.policy,
    isolationDefault,
    isolationForced: isolationForced ? 1 : 0,
  };
}

/** A fresh token and its hash (rotation). */
export function newToken(): { token: string; hash: string } {
  const token = randomToken();
  return { token, hash: hashToken(token) };
}

/** A token as a new key and a rotation make it: the prefix and 32 random bytes. */
function randomToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
}

/** What a key id looks like (a generated `key_` + hex, or a named one such as key_env_admin). */
export const KEY_ID_PATTERN = /^key_[A-Za-z0-9_]{1,64}$/;
