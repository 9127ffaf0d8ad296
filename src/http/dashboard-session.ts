/**
 * Dashboard logins. An admin key is exchanged (POST /dashboard/login) for a
 * random session id in an HttpOnly, SameSite=Strict cookie; the store keeps
 * only its SHA-256, the admin key it acts as and its expiry, so a login made
 * on one API node works on every other and logout ends it everywhere. Each
 * request re-reads the key: a revoked key, or one no longer admin, ends the
 * session at once.
 *
 * The CSRF token is derived from the session id, handed to the page at login
 * and required as X-CSRF-Token on every state change made with the cookie:
 * a page on another site can make the browser send the cookie (were
 * SameSite ever lax) but can never read the token. Origin and Sec-Fetch-Site
 * are checked too, so a cross-site request is refused before anything else.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { DashboardConfig } from "../config/dashboard-config.js";
import type { ApiKey } from "../store/keys.js";
import type { DashboardSessionStore, KeyStore } from "../store/store.js";

export const COOKIE_NAME = "warden_dashboard";
export const CSRF_HEADER = "x-csrf-token";
/** A session id: 32 random bytes, base64url. Anything else is not looked up. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Why a cookie was not accepted; the Gate audits and answers it. */
export interface CookieRefusal {
  code: "UNAUTHORIZED" | "PERMISSION_DENIED";
  message: string;
}

export type CookieOutcome = { key: ApiKey } | { refuse: CookieRefusal } | null;

/** The routes a dashboard cookie may act on: admin ones only, never one that runs code. */
export function cookieRoute(url: string | undefined): boolean {
  return url !== undefined && (url.startsWith("/api/sandbox/") || url.startsWith("/dashboard/"));
}

/** The value of one cookie in a Cookie header (first match), or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header || header.length > 8192) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * A request from another site is refused: browsers send Sec-Fetch-Site, and
 * Origin on every non-GET fetch; each, when present, must say "this origin".
 */
export function crossSite(request: FastifyRequest): string | null {
  const site = request.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none")
    return `cross-site request refused (Sec-Fetch-Site: ${String(site).slice(0, 20)})`;
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== `${request.protocol}://${request.host}`)
    return "cross-origin request refused (Origin does not match this server)";
  return null;
}

export class DashboardSessions {
  constructor(
    /** Read when used: the routes are also built without a store (OpenAPI generation). */
    private readonly sessions: () => DashboardSessionStore,
    private readonly keys: KeyStore,
    private readonly config: DashboardConfig,
  ) {}

  /**
   * The CSRF token of a session: a hash of its 256-bit random id. Only a holder
   * of the (HttpOnly) cookie can compute it; it reveals nothing of the id. It
   * needs no secret, so every node and a restarted one derive the same token.
   */
  csrfFor(sessionId: string): string {
    return createHash("sha256").update(`warden-csrf:${sessionId}`).digest("base64url");
  }

  /** Exchanges an admin key for a session; null when the token is not an active admin key. */
  async login(
    token: string,
  ): Promise<{ sessionId: string; key: ApiKey; expiresAt: number } | null> {
    const key = await this.keys.authenticate(token);
    if (!key?.scopes.includes("admin")) return null;
    const now = Date.now();
    await this.sessions().expire(now);
    const sessionId = randomBytes(32).toString("base64url");
    const expiresAt = now + this.config.sessionTtlMinutes * 60_000;
    await this.sessions().create({
      idHash: sha256(sessionId),
      keyId: key.id,
      createdAt: now,
      expiresAt,
    });
    return { sessionId, key, expiresAt };
  }

  /** The live session a request's cookie names, with its key re-checked. */
  async session(
    request: FastifyRequest,
  ): Promise<{ sessionId: string; key: ApiKey; expiresAt: number } | null> {
    const sessionId = readCookie(request.headers.cookie, COOKIE_NAME);
    if (!sessionId || !SESSION_ID.test(sessionId)) return null;
    const row = await this.sessions().get(sha256(sessionId));
    if (!row || row.expiresAt <= Date.now()) return null;
    const key = await this.keys.get(row.keyId);
    if (!key || key.revokedAt !== null || !key.scopes.includes("admin")) return null;
    return { sessionId, key, expiresAt: row.expiresAt };
  }

  /**
   * The Gate's cookie path: null when the request carries no dashboard cookie
   * or the route is not one a cookie may act on (then it needs a key as ever).
   */
  authenticate = async (request: FastifyRequest): Promise<CookieOutcome> => {
    // An unrouted path is checked by its own (so the dashboard sees 404 for a missing API).
    if (!cookieRoute(request.routeOptions.url ?? request.url.split("?")[0])) return null;
    if (readCookie(request.headers.cookie, COOKIE_NAME) === undefined) return null;
    const refused = crossSite(request);
    if (refused) return { refuse: { code: "PERMISSION_DENIED", message: refused } };
    const session = await this.session(request);
    if (!session)
      return {
        refuse: {
          code: "UNAUTHORIZED",
          message: "dashboard session expired or unknown: log in again",
        },
      };
    if (!SAFE_METHODS.has(request.method)) {
      const sent = request.headers[CSRF_HEADER];
      if (typeof sent !== "string" || !sameText(sent, this.csrfFor(session.sessionId)))
        return {
          refuse: {
            code: "PERMISSION_DENIED",
            message: "missing or wrong X-CSRF-Token for this dashboard session",
          },
        };
    }
    return { key: session.key };
  };

  async logout(request: FastifyRequest): Promise<void> {
    const sessionId = readCookie(request.headers.cookie, COOKIE_NAME);
    if (sessionId && SESSION_ID.test(sessionId)) await this.sessions().delete(sha256(sessionId));
  }

  setCookie(reply: FastifyReply, request: FastifyRequest, value: string, maxAgeSeconds: number) {
    // Secure whenever the page came over TLS (here or at a trusted proxy).
    const secure = request.protocol === "https" ? "; Secure" : "";
    void reply.header(
      "Set-Cookie",
      `${COOKIE_NAME}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`,
    );
  }
}
