/**
 * Egress policy: which names a sandbox may reach, on which ports, and which
 * addresses are never reachable whatever the name says.
 */
import { BlockList, isIP } from "node:net";
import { WardenError } from "../errors.js";
import { parseHostname, parsePattern, printable } from "../util/hostname.js";

/** An allowlist entry in its normal form (see parsePattern), or INVALID_REQUEST naming `field`. */
export function checkPattern(pattern: string, field: string): string {
  const parsed = parsePattern(pattern);
  if (!parsed.ok)
    throw new WardenError(
      "INVALID_REQUEST",
      `${field}: "${printable(pattern)}" is not a host name or *.domain pattern (${parsed.reason})`,
    );
  return parsed.name;
}

/** Does `host` match `pattern` (exact, or a subdomain for `*.domain`)? Invalid names match nothing. */
export function matches(pattern: string, host: string): boolean {
  const parsed = parseHostname(host);
  if (!parsed.ok) return false;
  const h = parsed.name;
  if (!pattern.startsWith("*.")) return h === pattern;
  return h.endsWith(pattern.slice(1)) && h.length > pattern.length - 1;
}

/** Is a requested pattern within the server's allowlist? */
export function covered(requested: string, allowed: readonly string[]): boolean {
  return allowed.some((a) => {
    if (a === requested) return true;
    if (!a.startsWith("*.")) return false;
    const domain = a.slice(1); // ".example.com"
    return requested.startsWith("*.")
      ? requested.slice(1).endsWith(domain) && requested.length > a.length
      : matches(a, requested);
  });
}

/**
 * Addresses never reached through the proxy, whatever name resolves to them:
 * loopback, private, link-local (cloud metadata at 169.254.169.254),
 * carrier-grade NAT, multicast, reserved; IPv6 loopback, ULA (fc00::/7),
 * link-local, multicast, and v4-mapped forms of the v4 ranges.
 */
const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  BLOCKED.addSubnet(net, prefix, "ipv4");
// A public address that is a cloud host's own service: Azure's wireserver (and DNS).
BLOCKED.addAddress("168.63.129.16", "ipv4");
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
  ["64:ff9b::", 96],
  ["64:ff9b:1::", 48], // local-use NAT64
  ["100::", 64], // discard-only
  ["2001::", 32], // Teredo: embeds a v4 address
  ["2001:db8::", 32],
  ["2002::", 16], // 6to4: embeds a v4 address
] as const)
  BLOCKED.addSubnet(net, prefix, "ipv6");

/**
 * v6 addresses that embed a v4 one (::ffff:7f00:1 is 127.0.0.1). Kept apart
 * because Node's BlockList checks v4 addresses against v6 rules in their
 * mapped form: in BLOCKED, these ranges would refuse every v4 address.
 * Egress never needs them (a v4 answer is dialled as v4), so all are refused.
 */
const EMBEDDED_V4 = new BlockList();
EMBEDDED_V4.addSubnet("::", 96, "ipv6"); // IPv4-compatible (deprecated)
EMBEDDED_V4.addSubnet("::ffff:0:0", 96, "ipv6"); // IPv4-mapped
EMBEDDED_V4.addSubnet("::ffff:0:0:0", 96, "ipv6"); // IPv4-translated (SIIT)

export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return BLOCKED.check(address, "ipv4");
  if (family !== 6) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return BLOCKED.check(mapped[1]!, "ipv4");
  return EMBEDDED_V4.check(address, "ipv6") || BLOCKED.check(address, "ipv6");
}

/**
 * What a name on the server's private-host list may resolve to beyond public
 * addresses: loopback, RFC 1918, carrier-grade NAT and IPv6 ULA (where an
 * internal mirror lives). Never link-local (169.254/16 and fe80::/10 hold the
 * cloud metadata services), never the metadata addresses that sit inside
 * those ranges (Alibaba's 100.100.100.200, AWS's fd00:ec2::254), nor
 * unspecified, multicast or reserved ranges: a listed name whose DNS is
 * poisoned still cannot reach instance credentials.
 */
const PRIVATE_OK = new BlockList();
for (const [net, prefix] of [
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
] as const)
  PRIVATE_OK.addSubnet(net, prefix, "ipv4");
PRIVATE_OK.addAddress("::1", "ipv6");
PRIVATE_OK.addSubnet("fc00::", 7, "ipv6");
const METADATA = new BlockList();
METADATA.addAddress("100.100.100.200", "ipv4");
METADATA.addAddress("fd00:ec2::254", "ipv6");

/** Whether a listed private host may be dialled at `address` (see PRIVATE_OK). */
export function isPrivateAllowed(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (family === 6 && mapped) return isPrivateAllowed(mapped[1]!);
  const type = family === 4 ? "ipv4" : "ipv6";
  if (METADATA.check(address, type)) return false;
  // ::1 lies in ::/96 (v4-compatible); other v4-embedding forms stay refused.
  if (PRIVATE_OK.check(address, type))
    return !(family === 6 && address !== "::1" && EMBEDDED_V4.check(address, "ipv6"));
  return false;
}

/** The egress a run gets: validated, and within the server's bounds. */
export interface EgressPolicy {
  allow: string[];
  ports: number[];
  maxBytes: number;
  maxConnections: number;
  /** Name → address overrides used before DNS (tests, split horizons). */
  staticHosts: Record<string, string>;
  /** Test-only: let allowed names resolve to refused ranges. */
  allowPrivateAddresses: boolean;
  /**
   * Names (exact, server config only) that may resolve to loopback and
   * private addresses, never to metadata ones (isPrivateAllowed). A request
   * or a key can only narrow `allow`; it never reaches this list.
   */
  privateHosts?: readonly string[] | undefined;
}

/**
 * A request's `network` checked against the server's policy, narrowed by the
 * key's own allowlist when it has one (checked against the server's when the
 * key was made).
 */
export function resolveKeyEgress(
  requested: Parameters<typeof resolveEgress>[0],
  server: Parameters<typeof resolveEgress>[1],
  keyAllow: string[] | null | undefined,
): EgressPolicy | null {
  return resolveEgress(requested, keyAllow ? { ...server, allow: keyAllow } : server);
}

/**
 * The policy for a request's `network` field, bounded by the server's config:
 * every requested pattern must lie within the server allowlist, every port
 * within the server's ports. Empty or absent → null (no network at all).
 */
export function resolveEgress(
  requested: { allow: string[]; ports?: number[] | undefined } | undefined,
  server: {
    allow: string[];
    ports: number[];
    maxEgressBytes: number;
    maxConnections: number;
    staticHosts: Record<string, string>;
    allowPrivateAddresses: boolean;
    privateHosts?: readonly string[] | undefined;
  },
): EgressPolicy | null {
  if (!requested || requested.allow.length === 0) return null;
  const wanted = requested.allow.map((p, i) => checkPattern(p, `network.allow[${i}]`));
  const serverAllow = server.allow.map((p, i) =>
    checkPattern(p, `network.allow[${i}] (server config)`),
  );
  const allow = wanted.map((pattern, i) => {
    if (!covered(pattern, serverAllow))
      throw new WardenError(
        "PERMISSION_DENIED",
        `network.allow[${i}]: "${pattern}" is outside this server's egress allowlist${serverAllow.length ? ` (${serverAllow.join(", ")})` : " (egress is off)"}`,
      );
    return pattern;
  });
  const ports = requested.ports ?? server.ports;
  for (const [i, port] of ports.entries())
    if (!server.ports.includes(port))
      throw new WardenError(
        "PERMISSION_DENIED",
        `network.ports[${i}]: ${port} is not among the allowed ports (${server.ports.join(", ")})`,
      );
  return {
    allow,
    ports,
    maxBytes: server.maxEgressBytes,
    maxConnections: server.maxConnections,
    staticHosts: staticHostsOf(server.staticHosts),
    allowPrivateAddresses: server.allowPrivateAddresses,
    privateHosts: privateHostsOf(server.privateHosts ?? []),
  };
}

/** The server's private hosts in the proxy's normal form. */
export function privateHostsOf(entries: readonly string[]): string[] {
  return entries.map((entry) => {
    const name = parseHostname(entry);
    if (!name.ok)
      throw new WardenError(
        "INVALID_REQUEST",
        `network.privateHosts: "${printable(entry)}" (server config) is not a host name`,
      );
    return name.name;
  });
}

/** The server's static answers, keyed by the same normal form the proxy looks names up in. */
function staticHostsOf(entries: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, address] of Object.entries(entries)) {
    const name = parseHostname(key);
    if (!name.ok || !isIP(address))
      throw new WardenError(
        "INVALID_REQUEST",
        `network.staticHosts["${printable(key)}"] (server config): must map a host name to an IP address`,
      );
    out[name.name] = address;
  }
  return out;
}
