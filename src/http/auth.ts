/**
 * Who is asking: a bearer API key (or, on the Piston routes when allowed, no
 * key at all as user `anonymous`), checked before anything is parsed, then
 * rate-limited per client IP and per key, and capped in how many requests it
 * may hold open at once (streams and waits cost nothing to open and last).
 * Refusals are audited through the RefusalLog, so a flood of them is cheap.
 */
import type { IncomingMessage } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ServerConfig } from "../config/schema.js";
import type { ExecutionFrontend } from "../executions/frontend.js";
import { WardenError } from "../errors.js";
import { SlidingWindowLimiter, type RateDecision, type WindowLimit } from "../policy/rate-limit.js";
import type { ApiKey, Scope } from "../store/keys.js";
import type { KeyStore } from "../store/store.js";
import type { RefusalLog } from "./refusals.js";
import { whenAnswered } from "./answered.js";
import type { RateLimiter } from "../cluster/rate-limit-redis.js";
import type { CookieOutcome } from "./dashboard-session.js";

/** Makes a limiter for a set of windows; cluster API nodes share theirs in Redis. */
export type LimiterFactory = (windows: WindowLimit[], name: string) => RateLimiter;
/** Limiters of this process alone (one node; the dashboard login when no factory is given). */
export const inProcessLimiters: LimiterFactory = (w) => new SlidingWindowLimiter(w);

export interface Actor {
  userId: string;
  key: ApiKey | null;
  anonymous: boolean;
}

declare module "fastify" {
  interface FastifyRequest {
    actor: Actor | null;
  }
  interface FastifyContextConfig {
    /** Scope a route needs; `public` routes need no key. */
    scope?: Scope | "public" | "any";
    /** Accept requests without a key as `anonymous` (Piston routes, when enabled). */
    anonymous?: boolean;
    /** Judge0 routes: the key may also come in Judge0's X-Auth-Token / X-Auth-User header. */
    judge0?: boolean;
    /** E2B's control API (src/http/e2b): the key may also come in E2B's X-API-KEY header. */
    e2b?: boolean;
  }
}

function windows(w: { burst: number; perMinute: number; perHour: number }): WindowLimit[] {
  return [
    { name: "burst", windowMs: 1000, limit: w.burst },
    { name: "minute", windowMs: 60_000, limit: w.perMinute },
    { name: "hour", windowMs: 3_600_000, limit: w.perHour },
  ];
}

/** Counts what each holder has open; over the cap nothing is counted. */
class OpenCounter {
  private readonly open = new Map<string, number>();
  constructor(readonly limit: number) {}
  full(id: string): boolean {
    return (this.open.get(id) ?? 0) >= this.limit;
  }
  add(id: string): () => void {
    this.open.set(id, (this.open.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(id) ?? 1) - 1;
      if (left > 0) this.open.set(id, left);
      else this.open.delete(id);
    };
  }
}

export class Gate {
  private readonly perIp: RateLimiter;
  private readonly perKey: RateLimiter;
  private readonly anonymous: RateLimiter;
  private readonly openPerIp: OpenCounter;
  private readonly openPerKey: OpenCounter;

  constructor(
    private readonly keys: KeyStore,
    private readonly service: ExecutionFrontend,
    private readonly server: ServerConfig,
    private readonly refusals: RefusalLog,
    limiter: LimiterFactory = inProcessLimiters,
    /** Dashboard sessions (dashboard-session.ts): a cookie acts as its admin key on admin routes only. */
    private readonly cookie?: (request: FastifyRequest) => Promise<CookieOutcome>,
  ) {
    this.perIp = limiter(windows(server.rateLimits.perIp), "perIp");
    this.perKey = limiter(windows(server.rateLimits.perKey), "perKey");
    this.anonymous = limiter(windows(server.rateLimits.anonymous), "anonymous");
    this.openPerIp = new OpenCounter(server.connections.maxOpenRequestsPerIp);
    this.openPerKey = new OpenCounter(server.connections.maxOpenRequestsPerKey);
  }

  /**
   * Counts one open request for `ip` and `holder` until `closed` fires, or
   * throws RATE_LIMIT when either is at its cap: one client cannot hold
   * more SSE streams, result waits or MCP calls than that.
   */
  private hold(
    ip: string,
    holder: string,
    closed: (release: () => void) => void,
    request?: FastifyRequest,
  ): void {
    const which = this.openPerIp.full(ip)
      ? { who: `client ${ip}`, limit: this.openPerIp.limit, setting: "maxOpenRequestsPerIp" }
      : this.openPerKey.full(holder)
        ? { who: "this key", limit: this.openPerKey.limit, setting: "maxOpenRequestsPerKey" }
        : null;
    if (which) {
      const message = `${which.who} already has ${which.limit} requests open (${which.setting}): close a stream or wait for a result`;
      this.service.metrics.reject("too_many_open");
      this.refusals.record(ip, {
        userId: request?.actor?.userId,
        level: "warn",
        event: "rate_limited",
        message,
        data: { ip, route: request?.routeOptions.url, requestId: request?.id },
      });
      throw new WardenError("RATE_LIMIT", message, { details: { retryAfterSeconds: 1 } });
    }
    const releaseIp = this.openPerIp.add(ip);
    const releaseKey = this.openPerKey.add(holder);
    closed(() => {
      releaseIp();
      releaseKey();
    });
  }

  private limit(
    reply: FastifyReply,
    decision: RateDecision,
    who: string,
    request: FastifyRequest,
  ): void {
    void reply.header("RateLimit-Limit", String(decision.limit));
    void reply.header("RateLimit-Remaining", String(decision.remaining));
    void reply.header("RateLimit-Reset", String(decision.resetSeconds));
    if (decision.allowed) return;
    this.service.metrics.reject("rate_limit");
    this.refusals.record(request.ip, {
      userId: request.actor?.userId,
      level: "warn",
      event: "rate_limited",
      message: `${who} exceeded its ${decision.window} rate limit`,
      data: { ip: request.ip, route: request.routeOptions.url, requestId: request.id },
    });
    throw new WardenError(
      "RATE_LIMIT",
      `too many requests (${decision.window} limit of ${decision.limit})`,
      {
        details: { retryAfterSeconds: decision.resetSeconds },
      },
    );
  }

  private refuse(
    request: FastifyRequest,
    code: "UNAUTHORIZED" | "PERMISSION_DENIED",
    message: string,
  ): never {
    this.service.metrics.reject(code === "UNAUTHORIZED" ? "unauthorized" : "forbidden");
    this.refusals.record(request.ip, {
      userId: request.actor?.userId,
      level: "warn",
      event: code === "UNAUTHORIZED" ? "auth_failure" : "forbidden",
      message,
      data: {
        ip: request.ip,
        method: request.method,
        route: request.routeOptions.url,
        requestId: request.id,
      },
    });
    throw new WardenError(code, message);
  }

  /**
   * The same checks for a request Fastify never routes (a WebSocket upgrade):
   * IP limit, key, scope, key limit. Throws the error to answer with.
   */
  async admitRaw(raw: IncomingMessage, scope: Scope): Promise<Actor> {
    const ip = raw.socket.remoteAddress ?? "unknown";
    const route = (raw.url ?? "").split("?")[0];
    const deny = (code: "UNAUTHORIZED" | "PERMISSION_DENIED" | "RATE_LIMIT", message: string) => {
      const reason = { UNAUTHORIZED: "unauthorized", PERMISSION_DENIED: "forbidden" } as const;
      this.service.metrics.reject(code === "RATE_LIMIT" ? "rate_limit" : reason[code]);
      this.refusals.record(ip, {
        level: "warn",
        event:
          code === "UNAUTHORIZED"
            ? "auth_failure"
            : code === "RATE_LIMIT"
              ? "rate_limited"
              : "forbidden",
        message,
        data: { ip, method: raw.method, route },
      });
      return new WardenError(code, message);
    };
    if (!(await this.perIp.hit(ip)).allowed)
      throw deny("RATE_LIMIT", `client ${ip}: too many requests`);
    const token = bearer(raw.headers.authorization);
    if (!token) throw deny("UNAUTHORIZED", "missing API key: send Authorization: Bearer <key>");
    const key = await this.keys.authenticate(token);
    if (!key) throw deny("UNAUTHORIZED", "invalid or revoked API key");
    if (!key.scopes.includes(scope) && !key.scopes.includes("admin"))
      throw deny("PERMISSION_DENIED", `this key lacks the ${scope} scope`);
    if (!(await this.perKey.hit(key.id)).allowed)
      throw deny("RATE_LIMIT", `key ${key.id}: too many requests`);
    // An upgraded connection (a preview WebSocket) is held until its socket closes.
    this.hold(ip, key.id, (release) => raw.socket.once("close", release));
    return { userId: key.userId, key, anonymous: false };
  }

  /** onRequest hook: IP limit, then key, then key limit. */
  check = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    request.actor = null;
    const scope = request.routeOptions.config.scope ?? "any";
    // E2B's sandbox plane (and its 501 for unknown paths) needs no key: each
    // call proves itself with its sandbox's token. Per-IP limits still apply,
    // so guessing tokens or flooding costs the client its rate budget.
    if ((scope === "public" || request.is404) && request.url.startsWith("/e2b/")) {
      this.limit(reply, await this.perIp.hit(request.ip), `client ${request.ip}`, request);
      this.holdUntilAnswered(request, reply, `e2b-plane ${request.ip}`);
      return;
    }
    if (scope === "public") return;
    this.limit(reply, await this.perIp.hit(request.ip), `client ${request.ip}`, request);
    const config = request.routeOptions.config;
    const token =
      bearer(request.headers.authorization) ??
      (config.judge0 ? judge0Token(request.headers) : undefined) ??
      (config.e2b ? headerToken(request.headers, "x-api-key") : undefined);
    const viaCookie = token || !this.cookie ? null : await this.cookie(request);
    if (viaCookie && "refuse" in viaCookie)
      this.refuse(request, viaCookie.refuse.code, viaCookie.refuse.message);
    const key = token ? await this.keys.authenticate(token) : viaCookie?.key;
    if (!token && !key) {
      if (request.routeOptions.config.anonymous && this.server.pistonAnonymous) {
        request.actor = { userId: "anonymous", key: null, anonymous: true };
        this.limit(reply, await this.anonymous.hit(request.ip), "anonymous client", request);
        this.holdUntilAnswered(request, reply, "anonymous");
        return;
      }
      this.refuse(
        request,
        "UNAUTHORIZED",
        config.e2b
          ? "missing API key: send X-API-KEY: <Warden key> (E2B_API_KEY)"
          : "missing API key: send Authorization: Bearer <key>",
      );
    }
    if (!key) this.refuse(request, "UNAUTHORIZED", "invalid or revoked API key");
    request.actor = { userId: key.userId, key, anonymous: false };
    if (scope !== "any" && !key.scopes.includes(scope) && !key.scopes.includes("admin"))
      this.refuse(request, "PERMISSION_DENIED", `this key lacks the ${scope} scope`);
    this.limit(reply, await this.perKey.hit(key.id), `key ${key.id}`, request);
    this.holdUntilAnswered(request, reply, key.id);
  };

  /** Counts the request as open until its response ends or its connection goes. */
  private holdUntilAnswered(request: FastifyRequest, reply: FastifyReply, holder: string): void {
    this.hold(request.ip, holder, (release) => whenAnswered(request, reply, release), request);
  }
}

/** The bearer token of an Authorization header, if any. */
function bearer(header: string | undefined): string | undefined {
  return header?.startsWith("Bearer ") ? header.slice(7).trim() || undefined : undefined;
}

/** Judge0's auth headers (X-Auth-Token, X-Auth-User) carry a Warden key on its routes. */
function judge0Token(headers: IncomingMessage["headers"]): string | undefined {
  return headerToken(headers, "x-auth-token") ?? headerToken(headers, "x-auth-user");
}

/** A key in a header of its own (Judge0's, E2B's X-API-KEY). */
function headerToken(headers: IncomingMessage["headers"], name: string): string | undefined {
  const v = headers[name];
  return typeof v === "string" && v.trim() ? v.trim() : undefined;
}

export function hasScope(actor: Actor | null, scope: Scope): boolean {
  return actor?.key?.scopes.includes(scope) ?? false;
}
