/**
 * Where a callback may go. A callback URL comes from a client and Warden
 * POSTs to it from inside its own network: without these checks it would be
 * a way to reach Warden's loopback services, the private network around it
 * and the cloud metadata service (SSRF). The same address rules as egress
 * (src/network/policy.ts) apply, to the literal and to every address a name
 * resolves to; the check runs when the URL is given and again, on fresh DNS
 * answers, before each attempt, which then connects to the address checked
 * (a name that re-resolves to 127.0.0.1 between the two gets nowhere).
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import { WardenError } from "../errors.js";
import { isBlockedAddress, isPrivateAllowed } from "../network/policy.js";
import { ipLiteral, parseHostname, printable } from "../util/hostname.js";

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to every address it has (the system resolver, or a stand-in in tests). */
export type Lookup = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemLookup: Lookup = (hostname) =>
  dnsLookup(hostname, { all: true, verbatim: true });

/**
 * Names that are the machine itself or a cloud's metadata service whatever
 * DNS says: refused before resolving (metadata names even when allowed).
 */
const METADATA_NAMES = new Set([
  "metadata",
  "metadata.google.internal",
  "metadata.goog",
  "instance-data",
  "instance-data.ec2.internal",
]);
const isLocalName = (name: string): boolean => name === "localhost" || name.endsWith(".localhost");

export interface UrlRules {
  /** Exact host names or IP addresses that may be loopback or private (config only). */
  allowHosts: readonly string[];
  lookup: Lookup;
  /** How long a name may take to resolve. */
  timeoutMs: number;
}

export type HostCheck = { ok: true; addresses: ResolvedAddress[] } | { ok: false; reason: string };

/** Why `address` may not be dialled, or null: allowed hosts may be private, never link-local or metadata. */
function addressRefusal(address: string, allowed: boolean): string | null {
  if (!isBlockedAddress(address)) return null;
  if (allowed && isPrivateAllowed(address)) return null;
  return `${address} is a loopback, private, link-local, metadata or reserved address`;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The addresses a URL's host may be reached at, every one of them checked; or why not. */
export async function checkHost(hostname: string, rules: UrlRules): Promise<HostCheck> {
  const address = ipLiteral(hostname);
  if (address !== null) {
    const refusal = addressRefusal(address, rules.allowHosts.includes(address));
    return refusal
      ? { ok: false, reason: refusal }
      : { ok: true, addresses: [{ address, family: isIP(address) }] };
  }
  const parsed = parseHostname(hostname);
  if (!parsed.ok) return { ok: false, reason: `"${printable(hostname)}": ${parsed.reason}` };
  const name = parsed.name;
  if (METADATA_NAMES.has(name)) return { ok: false, reason: `${name} is a metadata service` };
  const allowed = rules.allowHosts.includes(name);
  if (isLocalName(name) && !allowed) return { ok: false, reason: `${name} is this machine` };
  let addresses: ResolvedAddress[];
  try {
    addresses = await withTimeout(rules.lookup(name), rules.timeoutMs, "DNS timed out");
  } catch (error) {
    return { ok: false, reason: `${name} does not resolve (${(error as Error).message})` };
  }
  if (addresses.length === 0) return { ok: false, reason: `${name} does not resolve` };
  // Every answer, not the first: a receiver could otherwise pick a refused one later.
  for (const a of addresses) {
    const refusal = addressRefusal(a.address, allowed);
    if (refusal) return { ok: false, reason: `${name} resolves to ${refusal}` };
  }
  return { ok: true, addresses };
}

/**
 * A callback URL as given in a request: absolute http(s), no credentials,
 * a host that passes checkHost. Returns its normal form (WHATWG URL, which
 * also reads `0x7f.1` or `2130706433` as the address they are).
 */
export async function checkCallbackUrl(raw: string, field: string, rules: UrlRules): Promise<URL> {
  const refuse = (why: string): WardenError =>
    new WardenError("INVALID_REQUEST", `${field}: ${why} (docs/webhooks.md)`, {
      details: { field },
    });
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse("not an absolute URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw refuse("must be http or https");
  // Credentials in a URL end up in logs and in the delivery log: the signature authenticates.
  if (url.username !== "" || url.password !== "") throw refuse("must not hold credentials");
  const host = await checkHost(url.hostname, rules);
  if (!host.ok) throw refuse(`refused destination: ${host.reason}`);
  return url;
}
