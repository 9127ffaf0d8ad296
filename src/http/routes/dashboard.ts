/**
 * The admin dashboard: its three static files (built by `npm run build` into
 * dist/web, read once here; no directory is ever listed or walked), and its
 * login, session and logout (dashboard-session.ts holds the model).
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { DashboardConfig } from "../../config/dashboard-config.js";
import { WardenError } from "../../errors.js";
import type { ApiKey } from "../../store/keys.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import { inProcessLimiters, type LimiterFactory } from "../auth.js";
import { crossSite, type DashboardSessions } from "../dashboard-session.js";
import { emptyBodyIsNoBody } from "../empty-body.js";
import type { RefusalLog } from "../refusals.js";
import { ErrorResponses } from "../schemas.js";

/** Where the build puts the client: <package>/dist/web, from src/ and from dist/ alike. */
const WEB_DIR = join(import.meta.dirname, "..", "..", "..", "dist", "web");

/**
 * The page's own policy, stricter than the API's: scripts and styles only
 * from these files (no inline code at all), fetches only to this origin.
 */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

interface StaticFile {
  body: Buffer;
  gzip: Buffer;
  type: string;
  etag: string;
}

const FILES: Record<string, { file: string; type: string }> = {
  "/dashboard": { file: "index.html", type: "text/html; charset=utf-8" },
  "/dashboard/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/dashboard/app.css": { file: "app.css", type: "text/css; charset=utf-8" },
};

function loadFiles(): Map<string, StaticFile> | null {
  const files = new Map<string, StaticFile>();
  for (const [url, { file, type }] of Object.entries(FILES)) {
    const path = join(WEB_DIR, file);
    if (!existsSync(path)) return null;
    const body = readFileSync(path);
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
    files.set(url, { body, gzip: gzipSync(body, { level: 9 }), type, etag });
  }
  return files;
}

const SessionViewSchema = z.object({
  csrfToken: z.string().describe("Send as X-CSRF-Token on every state change."),
  keyId: z.string(),
  userId: z.string(),
  expiresAt: z.string(),
});

export const dashboardRoutes: FastifyPluginAsyncZod<{
  config: DashboardConfig;
  sessions: DashboardSessions;
  service: ExecutionFrontend;
  refusals: RefusalLog;
  limiters?: LimiterFactory | undefined;
}> = async (app, o) => {
  const files = loadFiles();
  const window = { name: "minute", windowMs: 60_000, limit: o.config.loginAttemptsPerMinute };
  /** What the page gets of its session, at login and on reload alike. */
  const view = (s: { sessionId: string; key: ApiKey; expiresAt: number }) => ({
    csrfToken: o.sessions.csrfFor(s.sessionId),
    keyId: s.key.id,
    userId: s.key.userId,
    expiresAt: new Date(s.expiresAt).toISOString(),
  });
  const loginLimiter = (o.limiters ?? inProcessLimiters)([window], "dashboardLogin");

  for (const url of Object.keys(FILES))
    app.get(
      url,
      { config: { scope: "public" }, schema: { hide: true } },
      async (request, reply) => {
        const file = files?.get(url);
        if (!file)
          throw new WardenError("NOT_FOUND", "the dashboard is not built: run `npm run build`");
        void reply
          .header("Content-Security-Policy", PAGE_CSP)
          .header("Cache-Control", "no-cache")
          .header("ETag", file.etag)
          .header("Vary", "Accept-Encoding")
          .type(file.type);
        if (request.headers["if-none-match"] === file.etag) return reply.status(304).send();
        if (/\bgzip\b/.test(request.headers["accept-encoding"] ?? ""))
          return reply.header("Content-Encoding", "gzip").send(file.gzip);
        return reply.send(file.body);
      },
    );

  app.post(
    "/dashboard/login",
    {
      config: { scope: "public" },
      schema: {
        summary: "Exchange an admin key for a dashboard session cookie",
        description:
          "Sets an HttpOnly, SameSite=Strict cookie (Secure over TLS) valid for `dashboard.sessionTtlMinutes`; answers the CSRF token to send as X-CSRF-Token on state changes. User keys are refused. Attempts are rate-limited per client address.",
        body: z
          .object({ token: z.string().min(1).max(512).describe("An admin API key.") })
          .strict(),
        response: { 200: SessionViewSchema, ...ErrorResponses },
      },
    },
    async (request, reply) => {
      const refused = crossSite(request);
      if (refused) throw new WardenError("PERMISSION_DENIED", refused);
      const decision = await loginLimiter.hit(request.ip);
      if (!decision.allowed) {
        o.service.metrics.reject("rate_limit");
        o.refusals.record(request.ip, {
          level: "warn",
          event: "rate_limited",
          message: `client ${request.ip} exceeded ${window.limit} dashboard logins a minute`,
          data: { ip: request.ip, route: "/dashboard/login", requestId: request.id },
        });
        throw new WardenError(
          "RATE_LIMIT",
          `too many login attempts (${window.limit} a minute, dashboard.loginAttemptsPerMinute)`,
          { details: { retryAfterSeconds: decision.resetSeconds } },
        );
      }
      const session = await o.sessions.login(request.body.token);
      if (!session) {
        o.service.metrics.reject("unauthorized");
        o.refusals.record(request.ip, {
          level: "warn",
          event: "auth_failure",
          message: "dashboard login refused: not an active admin key",
          data: { ip: request.ip, route: "/dashboard/login", requestId: request.id },
        });
        throw new WardenError("UNAUTHORIZED", "token: not an active admin key");
      }
      o.service.audit({
        userId: session.key.userId,
        level: "info",
        event: "dashboard_login",
        message: `dashboard login with key ${session.key.id}`,
        data: { keyId: session.key.id, ip: request.ip, requestId: request.id },
      });
      o.sessions.setCookie(reply, request, session.sessionId, o.config.sessionTtlMinutes * 60);
      return view(session);
    },
  );

  app.get(
    "/dashboard/session",
    {
      config: { scope: "admin" },
      schema: {
        summary: "The dashboard session of this cookie, with its CSRF token",
        response: { 200: SessionViewSchema, ...ErrorResponses },
      },
    },
    async (request) => {
      const session = await o.sessions.session(request);
      if (!session) throw new WardenError("UNAUTHORIZED", "no dashboard session: log in");
      return view(session);
    },
  );

  app.post(
    "/dashboard/logout",
    {
      config: { scope: "admin" },
      preParsing: emptyBodyIsNoBody,
      schema: {
        summary: "End this dashboard session (on every node)",
        response: { 200: z.object({ success: z.boolean() }), ...ErrorResponses },
      },
    },
    async (request, reply) => {
      await o.sessions.logout(request);
      o.sessions.setCookie(reply, request, "", 0);
      return { success: true };
    },
  );
};
