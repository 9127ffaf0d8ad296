/**
 * The one parser for host names that cross the egress boundary: allowlist
 * entries (server config, requests, keys) and the names a sandbox asks the
 * proxy for over HTTP, CONNECT and SOCKS5.
 *
 * Only plain DNS names in their ASCII form pass: LDH labels (letters, digits,
 * hyphen, no hyphen at either end), 1-63 bytes each, 253 in all, lowercase.
 * Everything else is refused rather than "cleaned", because every cleaning
 * step is a place where the matcher and the resolver can disagree (the
 * resolver stops at a NUL byte, `new URL` percent-decodes, a browser maps
 * backslashes, glibc reads `0x7f.1` and `2130706433` as addresses).
 *
 * IDNA: A-labels (`xn--…`) are LDH and pass as they are; Unicode names do
 * not. Matching is byte-for-byte on the ASCII form, so a confusable Unicode
 * spelling can never match an ASCII allowlist entry, and an internationalised
 * name is reachable only if the allowlist names its `xn--` form.
 */
import { isIP } from "node:net";

/** A name of at most 253 bytes; one trailing dot (the DNS root) is dropped. */
const MAX_HOSTNAME_BYTES = 253;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** What WHATWG URL and inet_aton read as an IPv4 number: all digits, or 0x + hex. */
const NUMERIC = /^(?:[0-9]+|0x[0-9a-f]*)$/;

export type NameCheck = { ok: true; name: string } | { ok: false; reason: string };

/**
 * Parses a host name exactly as received (no trimming, no decoding).
 * Returns the normalised name or why it is refused.
 */
export function parseHostname(raw: string): NameCheck {
  if (raw.length === 0) return { ok: false, reason: "empty host name" };
  // Checked on the raw length first: no work on huge hostile strings.
  if (raw.length > MAX_HOSTNAME_BYTES + 1) return { ok: false, reason: "host name is too long" };
  // Anything outside LDH and dots is refused here: NUL, %, @, #, \, :, [ ], spaces, Unicode.
  // Checked before lowercasing, which maps some Unicode (the Kelvin sign) to ASCII.
  if (!/^[A-Za-z0-9.-]+$/.test(raw))
    return { ok: false, reason: "host name has characters outside letters, digits, - and ." };
  const name = (raw.endsWith(".") ? raw.slice(0, -1) : raw).toLowerCase();
  if (name.length === 0) return { ok: false, reason: "empty host name" };
  if (name.length > MAX_HOSTNAME_BYTES) return { ok: false, reason: "host name is too long" };
  const labels = name.split(".");
  for (const label of labels) {
    if (label.length === 0) return { ok: false, reason: "host name has an empty label" };
    if (label.length > 63) return { ok: false, reason: "host name has a label over 63 bytes" };
    if (!LABEL.test(label))
      return { ok: false, reason: "host name has a label that starts or ends with -" };
  }
  // A numeric last label makes the whole name an IPv4 literal to URL parsers
  // and inet_aton (127.1, 0x7f.1, 2130706433, 0177.0.0.1); no TLD is numeric.
  if (NUMERIC.test(labels[labels.length - 1]!))
    return { ok: false, reason: "addresses are not allowed, only names on the allowlist" };
  return { ok: true, name };
}

/**
 * An allowlist entry: a host name, or `*.` followed by a domain (any
 * subdomain, not the domain itself); no bare `*`. Trimmed, then read by the
 * same parser as the names a sandbox asks for, so an entry and a request are
 * compared in one normal form.
 */
export function parsePattern(entry: string): NameCheck {
  const p = entry.trim();
  const wildcard = p.startsWith("*.");
  const name = parseHostname(wildcard ? p.slice(2) : p);
  if (!name.ok) return name;
  return { ok: true, name: wildcard ? `*.${name.name}` : name.name };
}

export type HostPort =
  { ok: true; name: string; port: number } | { ok: false; reason: string; host: string };

/** A decimal port 1-65535, no sign, no leading zeros beyond one digit's worth of text. */
function parsePort(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65_535 ? port : null;
}

/**
 * `name[:port]` as in a CONNECT target or a URL authority. Bracketed IPv6
 * and userinfo are refused by the name parser (they are not LDH).
 */
export function parseHostPort(authority: string, defaultPort: number | null): HostPort {
  const colon = authority.lastIndexOf(":");
  const hostText = colon < 0 ? authority : authority.slice(0, colon);
  const host = printable(hostText);
  let port = defaultPort;
  if (colon >= 0) {
    port = parsePort(authority.slice(colon + 1));
    if (port === null) return { ok: false, reason: "port is not a number 1-65535", host };
  }
  if (port === null) return { ok: false, reason: "port is missing", host };
  const name = parseHostname(hostText);
  if (!name.ok) return { ok: false, reason: name.reason, host };
  return { ok: true, name: name.name, port };
}

/** A hostile string made safe to log and audit: printable ASCII only, at most 100 characters. */
export function printable(text: string): string {
  const clean = text.slice(0, 100).replace(/[^\x20-\x7e]/g, "?");
  return text.length > 100 ? `${clean}…` : clean;
}

/** The IP address a host is written as (`127.0.0.1`, `::1` or `[::1]`), lower-cased; null for a name. */
export function ipLiteral(host: string): string | null {
  const literal = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return isIP(literal) !== 0 ? literal.toLowerCase() : null;
}
