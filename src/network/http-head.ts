/**
 * Strict parsing of the request head a sandbox sends to the egress proxy,
 * and the head the proxy sends upstream in its place.
 *
 * The head is hostile input. It is parsed by rules, not by leniency: CRLF
 * line ends, a token method, a target of visible ASCII, HTTP/1.0 or 1.1,
 * `name: value` headers without folding or control bytes, bounded in size
 * and number. Anything else is a 400, never an exception.
 *
 * The upstream request is rebuilt, not forwarded: its Host is the allowed
 * name from the URL (whatever Host the program sent is dropped, so an
 * allowed name cannot carry a request to another virtual host on the same
 * address), hop-by-hop and proxy headers are dropped, and the body is framed
 * by Content-Length so that exactly one request reaches the upstream.
 */
import { parseHostPort, printable } from "../util/hostname.js";

export const HEAD_LIMITS = {
  /** Request line plus headers plus the blank line. */
  bytes: 16 * 1024,
  requestLineBytes: 8 * 1024,
  headers: 100,
} as const;

export type ProxyRequest =
  | { kind: "connect"; name: string; port: number }
  | {
      kind: "http";
      name: string;
      port: number;
      method: string;
      version: string;
      /** Origin-form target sent upstream: path and query. */
      path: string;
      /** Header lines forwarded as they came (Host and hop-by-hop ones removed). */
      headers: string[];
      /** Body bytes forwarded after the head; anything beyond is not sent. */
      bodyBytes: number;
    };

export type HeadResult =
  | { ok: true; request: ProxyRequest }
  | { ok: false; status: string; reason: string; host: string; port: number };

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([^ ]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
const HEADER = /^([^:]+):[ \t]*(.*?)[ \t]*$/;
const ABSOLUTE = /^http:\/\/([^/?]*)(.*)$/i;
/** Dropped on the way up: they belong to the hop between program and proxy, or are rewritten. */
const HOP = new Set([
  "host",
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "upgrade",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
]);

/** Parses a head that ends at (and includes) the first CRLFCRLF. */
export function parseHead(head: Buffer): HeadResult {
  const fail = (status: string, reason: string, host = "", port = 0): HeadResult => ({
    ok: false,
    status,
    reason,
    host,
    port,
  });
  const bad = (reason: string, host = "", port = 0): HeadResult =>
    fail("400 Bad Request", reason, host, port);
  if (head.length > HEAD_LIMITS.bytes)
    return fail(
      "431 Request Header Fields Too Large",
      `request head over ${HEAD_LIMITS.bytes} bytes`,
    );
  const text = head.toString("latin1");
  // CR and LF appear only as CRLF; no other control bytes (HTAB aside), no bytes over 0x7e.
  if (/[^\t\r\n\x20-\x7e]/.test(text) || /\r(?!\n)|(?<!\r)\n/.test(text))
    return bad("request head has control or non-ASCII bytes, or a bare CR/LF");
  const lines = text.slice(0, -4).split("\r\n");
  const requestLine = lines.shift() ?? "";
  if (requestLine.length > HEAD_LIMITS.requestLineBytes)
    return bad(`request line over ${HEAD_LIMITS.requestLineBytes} bytes`);
  if (lines.length > HEAD_LIMITS.headers) return bad(`more than ${HEAD_LIMITS.headers} headers`);
  const line = REQUEST_LINE.exec(requestLine);
  if (!line || !TOKEN.test(line[1]!)) return bad("request line is not METHOD TARGET HTTP/1.x");
  const [, method, target, minor] = line as unknown as [string, string, string, string];
  const headers: { name: string; line: string }[] = [];
  for (const h of lines) {
    const m = HEADER.exec(h);
    if (!m || !TOKEN.test(m[1]!)) return bad("a header line is not NAME: VALUE");
    headers.push({ name: m[1]!.toLowerCase(), line: h });
  }

  if (method === "CONNECT") {
    const where = parseHostPort(target, null);
    if (!where.ok) return bad(where.reason, where.host);
    return { ok: true, request: { kind: "connect", name: where.name, port: where.port } };
  }

  if (/^https:\/\//i.test(target))
    return bad("only http:// goes through as a plain request; use CONNECT for https");
  const url = ABSOLUTE.exec(target);
  if (!url) return bad("send requests with an absolute http:// URL (or use CONNECT)");
  const [, authority, rest] = url as unknown as [string, string, string];
  // Userinfo and fragments are where URL parsers disagree about the host.
  if (authority.includes("@"))
    return bad("user:password@ in the URL is not allowed", printable(authority));
  if (rest.includes("#"))
    return bad("a #fragment in the request target is not allowed", printable(authority));
  const where = parseHostPort(authority, 80);
  if (!where.ok) return bad(where.reason, where.host);

  const lengths = headers.filter((h) => h.name === "content-length");
  if (headers.some((h) => h.name === "transfer-encoding"))
    return fail(
      "411 Length Required",
      "chunked request bodies are not forwarded; send Content-Length",
      where.name,
      where.port,
    );
  let bodyBytes = 0;
  if (lengths.length > 0) {
    const values = new Set(lengths.map((h) => HEADER.exec(h.line)![2]!));
    const value = [...values][0]!;
    if (values.size !== 1 || !/^[0-9]{1,15}$/.test(value))
      return bad("Content-Length must be one decimal number", where.name, where.port);
    bodyBytes = Number(value);
  }
  // Headers the program lists in Connection are hop-by-hop too.
  const named = new Set(
    headers
      .filter((h) => h.name === "connection")
      .flatMap((h) => HEADER.exec(h.line)![2]!.toLowerCase().split(","))
      .map((s) => s.trim()),
  );
  const forwarded = headers
    .filter((h) => !HOP.has(h.name) && !h.name.startsWith("proxy-") && !named.has(h.name))
    .map((h) => h.line);
  return {
    ok: true,
    request: {
      kind: "http",
      name: where.name,
      port: where.port,
      method,
      version: `HTTP/1.${minor}`,
      path: rest.startsWith("/") ? rest : `/${rest}`,
      headers: forwarded,
      bodyBytes,
    },
  };
}

/** The head sent upstream: origin-form target, the allowed name as Host, one request only. */
export function upstreamHead(r: Extract<ProxyRequest, { kind: "http" }>): Buffer {
  const host = r.port === 80 ? r.name : `${r.name}:${r.port}`;
  const lines = [
    `${r.method} ${r.path} ${r.version}`,
    `host: ${host}`,
    ...r.headers,
    "connection: close",
  ];
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
}
