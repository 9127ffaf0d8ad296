/**
 * The internal channel between API nodes and workers. An API node has already
 * checked the user's key (the Gate); it tells the worker who is asking in
 * `x-warden-principal` (base64url JSON) and proves it came from a node that
 * holds `cluster.secret` with `x-warden-internal: v1 <ts> <hmac>`, where the
 * HMAC-SHA256 covers the time, the method, the request target and the
 * principal header byte for byte. So a worker trusts nothing a user sends it
 * directly: no key is accepted there, and a principal that was changed, moved
 * to another path or kept past ±30 s fails the check.
 *
 * What this does not stop: a signed request captured on the wire can be
 * replayed, within the 30 s window, to the same method and path as the same
 * principal (its body is not covered). Run the internal channel on a private
 * network or behind TLS.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { z } from "zod";
import { PolicyModeSchema } from "../contract/policy.js";
import { IsolationSchema } from "../contract/isolation.js";
import { WardenError } from "../errors.js";
import { ScopeSchema, type ApiKey } from "../store/keys.js";

export const INTERNAL_HEADER = "x-warden-internal";
export const PRINCIPAL_HEADER = "x-warden-principal";
/** Signatures older or newer than this are refused (clock skew between nodes included). */
export const MAX_SKEW_MS = 30_000;
/** The principal header, encoded: a key with a long egress list still fits; a flood does not. */
export const MAX_PRINCIPAL_CHARS = 8 * 1024;
/** At least this long, as the config requires: a short secret could be guessed offline. */
export const MIN_SECRET_CHARS = 32;

export const PrincipalSchema = z
  .object({
    userId: z.string().min(1).max(256),
    keyId: z.string().max(128).nullable(),
    scopes: z.array(ScopeSchema).max(8),
    networkAllow: z.array(z.string().max(253)).max(256).nullable(),
    policy: PolicyModeSchema.nullable(),
    // The key's tier travels with it: a worker must not run a forced-gvisor key's session in namespaces.
    isolationDefault: IsolationSchema.nullable().optional(),
    isolationForced: z.boolean().optional(),
    ip: z.string().max(64),
    requestId: z.string().max(64),
  })
  .strict();
export type Principal = z.infer<typeof PrincipalSchema>;

const SIGNATURE = /^v1 (\d{1,15}) ([0-9a-f]{64})$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

function checkSecret(secret: string): void {
  if (secret.length < MIN_SECRET_CHARS)
    throw new WardenError(
      "INTERNAL",
      `cluster.secret: at least ${MIN_SECRET_CHARS} characters (it signs the internal channel)`,
    );
}

function mac(secret: string, ts: string, method: string, target: string, principal: string) {
  return createHmac("sha256", secret)
    .update(`${ts}\n${method.toUpperCase()}\n${target}\n${principal}`)
    .digest();
}

/** The principal an API node sends for a key it authenticated. */
export function principalOf(key: ApiKey, ip: string, requestId: string): Principal {
  return {
    userId: key.userId,
    keyId: key.id,
    scopes: key.scopes,
    networkAllow: key.networkAllow,
    policy: key.policy,
    isolationDefault: key.isolationDefault,
    isolationForced: key.isolationForced,
    ip,
    requestId,
  };
}

/**
 * The two headers for one request to a worker. `target` is the request target
 * as the worker will see it (path and query).
 */
export function signRequest(
  secret: string,
  method: string,
  target: string,
  principal: Principal,
  now = Date.now(),
): { [INTERNAL_HEADER]: string; [PRINCIPAL_HEADER]: string } {
  checkSecret(secret);
  const encoded = Buffer.from(JSON.stringify(PrincipalSchema.parse(principal))).toString(
    "base64url",
  );
  if (encoded.length > MAX_PRINCIPAL_CHARS)
    throw new WardenError(
      "INVALID_REQUEST",
      `principal: at most ${MAX_PRINCIPAL_CHARS} characters encoded (this key's networkAllow is too long to forward)`,
    );
  const ts = String(now);
  const hmac = mac(secret, ts, method, target, encoded).toString("hex");
  return { [INTERNAL_HEADER]: `v1 ${ts} ${hmac}`, [PRINCIPAL_HEADER]: encoded };
}

function refuse(why: string): never {
  throw new WardenError("UNAUTHORIZED", `internal channel: ${why}`);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value;
}

/**
 * Checks a request that arrived on the internal channel; returns who it acts
 * for, or throws UNAUTHORIZED. The signature is checked before the principal
 * is parsed, so an unsigned request costs one HMAC and nothing else.
 */
export function verifyRequest(
  secret: string,
  headers: IncomingHttpHeaders,
  method: string,
  target: string,
  now = Date.now(),
): Principal {
  checkSecret(secret);
  // A user's key here means someone reached a worker directly: never honoured.
  if (headers.authorization !== undefined)
    refuse("user keys are not accepted on a worker; call an API node");
  const signature = single(headers[INTERNAL_HEADER]);
  const encoded = single(headers[PRINCIPAL_HEADER]);
  if (signature === undefined || encoded === undefined) refuse("unsigned request");
  if (encoded.length > MAX_PRINCIPAL_CHARS || !BASE64URL.test(encoded))
    refuse(`principal: not base64url of at most ${MAX_PRINCIPAL_CHARS} characters`);
  const match = SIGNATURE.exec(signature);
  if (!match) refuse("signature: not `v1 <ts> <hex hmac>`");
  const [, ts = "", given = ""] = match;
  if (Math.abs(now - Number(ts)) > MAX_SKEW_MS)
    refuse(`signature: timestamp outside ±${MAX_SKEW_MS / 1000} s`);
  const expected = mac(secret, ts, method, target, encoded);
  if (!timingSafeEqual(expected, Buffer.from(given, "hex"))) refuse("signature: does not match");
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8"));
  } catch {
    refuse("principal: not JSON");
  }
  const parsed = PrincipalSchema.safeParse(json);
  if (!parsed.success) refuse("principal: not a valid principal");
  return parsed.data;
}

/** The key a verified principal stands for, as the routes expect it on `request.actor`. */
export function keyOf(p: Principal): ApiKey {
  return {
    id: p.keyId ?? `principal:${p.userId}`,
    name: "(forwarded)",
    scopes: p.scopes,
    userId: p.userId,
    createdAt: 0,
    revokedAt: null,
    lastUsedAt: null,
    networkAllow: p.networkAllow,
    policy: p.policy,
    isolationDefault: p.isolationDefault ?? null,
    isolationForced: p.isolationForced ?? false,
  };
}
