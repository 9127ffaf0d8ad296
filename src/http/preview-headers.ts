/**
 * What crosses a web preview in each direction, as allow-lists. A preview is
 * code from a sandbox served on Warden's own origin, so anything it may say
 * there is a decision: a cookie, an auth challenge, a framing, CORS or CSP
 * policy, HSTS, a preload, a refresh or a redirect away would all act on
 * Warden's origin and on every other user's previews. Into the sandbox go only
 * the headers a web server needs to answer, never a credential of the viewer.
 */
import type { IncomingHttpHeaders } from "node:http";

/** Client headers a server inside may see; everything else (credentials, forwarding, hop-by-hop) stays out. */
const REQUEST_ALLOWED = new Set([
  "accept",
  "accept-encoding",
  "accept-language",
  "cache-control",
  "pragma",
  "content-type",
  "content-length",
  "content-encoding",
  "content-language",
  "if-match",
  "if-none-match",
  "if-modified-since",
  "if-unmodified-since",
  "if-range",
  "range",
  "user-agent",
  // The page's own origin: lets a server inside refuse cross-site WebSockets.
  "origin",
  "x-requested-with",
]);

/** Headers of a WebSocket (or other) upgrade request, on the upgrade path only. */
const UPGRADE_REQUEST_ALLOWED = new Set([
  "upgrade",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
]);

/** Response headers a preview may set: content, caching, ranges. Location is rewritten (see below). */
const RESPONSE_ALLOWED = new Set([
  "content-type",
  "content-length",
  "content-encoding",
  "content-language",
  "content-disposition",
  "content-range",
  "accept-ranges",
  "cache-control",
  "pragma",
  "etag",
  "last-modified",
  "expires",
  "age",
  "date",
  "vary",
  "allow",
  "retry-after",
]);

/** What a 101 may carry besides Upgrade and Connection, which Warden writes itself. */
const SWITCH_ALLOWED = new Set([
  "sec-websocket-accept",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
]);

/**
 * A value Node would refuse to write (control bytes, DEL), or too long to be
 * honest, is dropped here rather than thrown later while answering.
 */
const SAFE_VALUE = /^[\x20-\x7e\x80-\xff\t]{0,8192}$/;

/**
 * A previewed page is the session's content served from Warden's origin. The
 * CSP sandbox gives it an opaque origin, so its scripts cannot act as Warden's
 * pages (read their storage, call the API with the viewer's credentials).
 */
export const PREVIEW_CSP =
  "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads; frame-ancestors 'self'";

export function previewPrefix(id: string, port: number): string {
  return `/v1/sessions/${id}/ports/${port}`;
}

export type HeaderMap = Record<string, string | string[]>;

function pick(headers: IncomingHttpHeaders, allowed: (name: string) => boolean): HeaderMap {
  const out: HeaderMap = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || !allowed(name)) continue;
    const values = (Array.isArray(value) ? value : [value]).filter((v) => SAFE_VALUE.test(v));
    if (values.length > 0) out[name] = values.length === 1 ? values[0]! : values;
  }
  return out;
}

/** The request headers to send inside: the allow-list, Host the session's own, the prefix it is served under. */
export function requestHeaders(
  headers: IncomingHttpHeaders,
  port: number,
  prefix: string,
  upgrade: boolean,
): HeaderMap {
  const out = pick(
    headers,
    (name) => REQUEST_ALLOWED.has(name) || (upgrade && UPGRADE_REQUEST_ALLOWED.has(name)),
  );
  out.host = `127.0.0.1:${port}`;
  out["x-forwarded-prefix"] = prefix;
  if (upgrade) out.connection = "Upgrade";
  return out;
}

/**
 * A redirect target, kept inside this preview or dropped. The server inside
 * thinks it lives at http://127.0.0.1:PORT/, so its Location is resolved as a
 * browser would (backslashes, `//host`, `..` included) against that; a target
 * on another origin is dropped (no open redirect from Warden's origin), and a
 * path on its own origin is moved under the preview's prefix unless it is
 * already there (servers that honour X-Forwarded-Prefix).
 */
export function rewriteLocation(
  location: string,
  port: number,
  prefix: string,
  upstreamPath: string,
): string | undefined {
  const origin = `http://127.0.0.1:${port}`;
  let target: URL;
  try {
    target = new URL(location, new URL(upstreamPath, origin));
  } catch {
    return undefined;
  }
  const local = new Set([origin, `http://localhost:${port}`]);
  if (!local.has(target.origin)) return undefined;
  const path = target.pathname.startsWith(`${prefix}/`)
    ? target.pathname
    : `${prefix}${target.pathname}`;
  return `${path}${target.search}${target.hash}`;
}

/** The response headers a preview may set on Warden's origin. */
export function responseHeaders(
  headers: IncomingHttpHeaders,
  port: number,
  prefix: string,
  upstreamPath: string,
): HeaderMap {
  const out = pick(headers, (name) => RESPONSE_ALLOWED.has(name));
  const location = headers.location;
  if (typeof location === "string" && SAFE_VALUE.test(location)) {
    const rewritten = rewriteLocation(location, port, prefix, upstreamPath);
    if (rewritten !== undefined && SAFE_VALUE.test(rewritten)) out.location = rewritten;
  }
  return out;
}

/** The headers of a 101 besides Upgrade and Connection. */
export function switchHeaders(headers: IncomingHttpHeaders): HeaderMap {
  return pick(headers, (name) => SWITCH_ALLOWED.has(name));
}

/** A response head written by hand (the upgrade path has no Fastify reply). */
export function formatHead(status: number, reason: string, headers: HeaderMap): string {
  const lines = [`HTTP/1.1 ${status} ${reason}`];
  for (const [name, value] of Object.entries(headers))
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}
