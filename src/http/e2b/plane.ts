/**
 * The sandbox plane of the E2B adapter: how a request names its sandbox and
 * proves it may reach it, and how E2B's paths map onto the workspace.
 *
 * E2B's SDKs, pointed at one URL, name the sandbox in `E2b-Sandbox-Id` and
 * carry the access token the create answer gave them (`X-Access-Token`, or
 * `E2B-Traffic-Access-Token` from the code interpreter). The token is an HMAC
 * of the session id under a server secret: stateless, so any node holding the
 * secret checks it, and it names exactly one session.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, mkdirSync, openSync, readFileSync, writeSync, closeSync } from "node:fs";
import { join, posix } from "node:path";
import type { FastifyRequest } from "fastify";
import type { Config } from "../../config/schema.js";
import { WardenError } from "../../errors.js";
import type { SessionManager } from "../../sessions/manager.js";
import type { PolicyMode } from "../../contract/policy.js";
import type { SessionRunDeps } from "../../sessions/run-policy.js";

/** Connect's error codes (the ones this adapter answers with). */
export type ConnectCode =
  | "canceled"
  | "unknown"
  | "invalid_argument"
  | "deadline_exceeded"
  | "not_found"
  | "already_exists"
  | "permission_denied"
  | "resource_exhausted"
  | "failed_precondition"
  | "aborted"
  | "out_of_range"
  | "unimplemented"
  | "internal"
  | "unavailable"
  | "unauthenticated";

/** A refusal on the sandbox plane: a Connect code for RPCs, an HTTP status for plain routes. */
export class PlaneError extends Error {
  constructor(
    readonly connectCode: ConnectCode,
    message: string,
    readonly httpStatus: number,
  ) {
    super(message);
  }
}

/** Who a sandbox-plane request acts for, once its token has been checked. */
export interface SandboxCall {
  sessionId: string;
  e2bId: string;
  userId: string;
  /** The strictest static-analysis policy of the keys that created or connected to it. */
  policy: PolicyMode;
}

/** What every part of the adapter is given. */
export interface E2bDeps {
  sessions: SessionManager;
  config: Config;
  /** Signs and checks sandbox access tokens (see planeKeys). */
  tokens: PlaneTokens;
  /** The static-analysis policy cells go through, as on /v1/sessions/:id/run (run-policy.ts). */
  analyzer: SessionRunDeps["analyzer"];
  service: SessionRunDeps["service"];
  /** What the adapter keeps per sandbox: its template, and the policy its code obeys. */
  sandboxes: SandboxRecords;
}

const STRICTNESS: Record<PolicyMode, number> = { off: 0, audit: 1, block: 2 };

/**
 * What the adapter keeps of each sandbox, beside the session itself:
 * - the E2B template it was created from (not put in the user's metadata);
 * - the static-analysis policy its code obeys. The sandbox plane carries a
 *   token, not a key, so the policy of each key that creates or connects to
 *   the sandbox is recorded and the strictest holds (a block-mode key may not
 *   run through /e2b what /run would refuse it). A session no E2B key touched
 *   follows the server's.
 * Entries of ended sessions are dropped once the map reaches maxSessions.
 */
export class SandboxRecords {
  private readonly records = new Map<string, { template: string; policy: PolicyMode }>();
  constructor(private readonly deps: Pick<E2bDeps, "sessions" | "config" | "analyzer">) {}

  /** A key with this policy (null: the server's) created the session from `template`. */
  created(sessionId: string, template: string, keyPolicy: PolicyMode | null | undefined): void {
    if (this.records.size >= this.deps.config.maxSessions) this.prune();
    this.records.set(sessionId, { template, policy: this.deps.analyzer.modeFor(keyPolicy) });
  }

  /** A key with this policy connected to the session: its policy holds if stricter. */
  connected(sessionId: string, keyPolicy: PolicyMode | null | undefined): void {
    const mode = this.deps.analyzer.modeFor(keyPolicy);
    const r = this.records.get(sessionId);
    if (!r) this.created(sessionId, "base", mode);
    else if (STRICTNESS[mode] > STRICTNESS[r.policy]) r.policy = mode;
  }

  template(sessionId: string): string {
    return this.records.get(sessionId)?.template ?? "base";
  }

  policy(sessionId: string): PolicyMode {
    return this.records.get(sessionId)?.policy ?? this.deps.analyzer.modeFor(null);
  }

  private prune(): void {
    const live = new Set(this.deps.sessions.list("", true).map((s) => s.id));
    for (const id of this.records.keys()) if (!live.has(id)) this.records.delete(id);
  }
}

const SESSION_PREFIX = "sess_";
const ULID = /^[0-9a-hjkmnp-tv-z]{26}$/i;

/** A session id as E2B shows it: the ULID in lower case (DNS-safe for getHost names). */
export function toE2bId(sessionId: string): string {
  return sessionId.startsWith(SESSION_PREFIX)
    ? sessionId.slice(SESSION_PREFIX.length).toLowerCase()
    : sessionId.toLowerCase();
}

/** The session an E2B sandbox id names (either form); null when it cannot be one. */
export function toSessionId(e2bId: string): string | null {
  const bare = e2bId.startsWith(SESSION_PREFIX) ? e2bId.slice(SESSION_PREFIX.length) : e2bId;
  return ULID.test(bare) ? SESSION_PREFIX + bare.toUpperCase() : null;
}

export class PlaneTokens {
  constructor(private readonly secret: Buffer) {}

  /** The access token of one session: base64url(HMAC-SHA256(secret, sessionId)). */
  tokenFor(sessionId: string): string {
    return createHmac("sha256", this.secret).update(sessionId).digest("base64url");
  }

  /** Constant-time check of a presented token against the session's. */
  matches(sessionId: string, presented: string): boolean {
    const want = Buffer.from(this.tokenFor(sessionId));
    const got = Buffer.from(presented);
    return got.length === want.length && timingSafeEqual(got, want);
  }
}

/**
 * The token secret: e2b.tokenSecret, else a random one kept 0600 in the data
 * directory (made once, so tokens survive a restart with the sessions' snapshots).
 */
export function planeTokens(config: Config): PlaneTokens {
  if (config.e2b.tokenSecret) return new PlaneTokens(Buffer.from(config.e2b.tokenSecret));
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const path = join(config.dataDir, "e2b-token-secret");
  try {
    const fd = openSync(path, "wx", 0o600);
    writeSync(fd, randomBytes(32).toString("hex"));
    closeSync(fd);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  chmodSync(path, 0o600);
  const secret = readFileSync(path, "utf8").trim();
  if (secret.length < 32) throw new WardenError("INTERNAL", `${path}: secret too short`);
  return new PlaneTokens(Buffer.from(secret));
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === "string" && v.length <= 512 ? v.trim() : undefined;
}

/**
 * The sandbox a request is for and its owner, or a PlaneError. A wrong token,
 * an unknown sandbox and another user's sandbox all answer the same
 * `unauthenticated`, so the plane tells nobody which sandboxes exist.
 */
export function sandboxCall(req: FastifyRequest, deps: E2bDeps, e2bId?: string): SandboxCall {
  const named = e2bId ?? header(req, "e2b-sandbox-id");
  if (!named) throw new PlaneError("invalid_argument", "missing E2b-Sandbox-Id header", 400);
  const sessionId = toSessionId(named);
  const token = header(req, "x-access-token") ?? header(req, "e2b-traffic-access-token");
  const refused = new PlaneError(
    "unauthenticated",
    "sandbox access token missing or not valid for this sandbox",
    401,
  );
  if (!sessionId || !token || !deps.tokens.matches(sessionId, token)) throw refused;
  let userId: string;
  try {
    userId = deps.sessions.get(sessionId, "", true).userId;
  } catch {
    // A valid token for a session that is gone: the sandbox is not running.
    throw new PlaneError("not_found", `sandbox ${toE2bId(sessionId)} is not running`, 502);
  }
  return { sessionId, e2bId: toE2bId(sessionId), userId, policy: deps.sandboxes.policy(sessionId) };
}

const HOME = "/home/user";
const WORKSPACE = "/workspace";

/**
 * A path as E2B scripts write it, as a workspace-relative path:
 * "/home/user/a", "/workspace/a" and "a" → "a"; "/home/user" → ".". Anything
 * outside the workspace is refused: Warden's file calls reach only it.
 */
export function toWorkspacePath(p: string): string {
  if (p.length === 0 || p.length > 4096 || p.includes("\0"))
    throw new PlaneError("invalid_argument", "path: 1 to 4096 bytes, no NUL", 400);
  const abs = posix.normalize(p.startsWith("/") ? p : posix.join(HOME, p));
  for (const root of [HOME, WORKSPACE]) {
    if (abs === root || abs === `${root}/`) return ".";
    if (abs.startsWith(`${root}/`)) return abs.slice(root.length + 1).replace(/\/$/, "");
  }
  throw new PlaneError(
    "invalid_argument",
    `path ${p}: Warden's E2B adapter reaches files under /home/user (the workspace) only`,
    400,
  );
}

/** A workspace-relative path as E2B shows it: "a" → "/home/user/a", "." → "/home/user". */
export function toE2bPath(rel: string): string {
  const clean = posix.normalize(rel);
  return clean === "." || clean === "" ? HOME : posix.join(HOME, clean);
}
