import { describe, expect, it } from "vitest";
import {
  checkPattern,
  covered,
  isBlockedAddress,
  matches,
  resolveEgress,
} from "../../src/network/policy.js";
import { RefusalReporter, type EgressEvent } from "../../src/network/events.js";
import { parseHostname, parseHostPort } from "../../src/util/hostname.js";
import { parseHead, upstreamHead } from "../../src/network/http-head.js";
import { parseGreeting, parseRequest } from "../../src/network/socks.js";

const server = {
  allow: ["pypi.org", "*.pythonhosted.org", "*.example.com"],
  ports: [80, 443],
  maxEgressBytes: 1000,
  maxConnections: 10,
  staticHosts: {},
  allowPrivateAddresses: false,
};

describe("egress policy", () => {
  it("matches exact names and *.domain subdomains, never a bare *", () => {
    expect(matches("pypi.org", "PyPI.org.")).toBe(true);
    expect(matches("pypi.org", "evil-pypi.org")).toBe(false);
    expect(matches("*.example.com", "api.example.com")).toBe(true);
    expect(matches("*.example.com", "a.b.example.com")).toBe(true);
    expect(matches("*.example.com", "example.com")).toBe(false);
    expect(matches("*.example.com", "evilexample.com")).toBe(false);
    expect(() => checkPattern("*", "allow")).toThrow(/not a host name/);
    expect(() => checkPattern("exa mple.com", "allow")).toThrow();
    expect(() => checkPattern("http://x.com", "allow")).toThrow();
  });

  it("bounds a request by the server's allowlist and ports", () => {
    expect(covered("files.pythonhosted.org", server.allow)).toBe(true);
    expect(covered("*.api.example.com", server.allow)).toBe(true);
    expect(covered("*.example.com", server.allow)).toBe(true);
    expect(covered("example.com", server.allow)).toBe(false);
    expect(resolveEgress(undefined, server)).toBeNull();
    expect(resolveEgress({ allow: [] }, server)).toBeNull();
    expect(resolveEgress({ allow: ["pypi.org"] }, server)).toMatchObject({
      allow: ["pypi.org"],
      ports: [80, 443],
      maxBytes: 1000,
    });
    expect(() => resolveEgress({ allow: ["github.com"] }, server)).toThrow(
      /network\.allow\[0\]: "github\.com" is outside/,
    );
    expect(() => resolveEgress({ allow: ["pypi.org"], ports: [22] }, server)).toThrow(
      /network\.ports\[0\]: 22/,
    );
    expect(() => resolveEgress({ allow: ["pypi.org"] }, { ...server, allow: [] })).toThrow(
      /egress is off/,
    );
  });

  it("refuses loopback, private, link-local, metadata, multicast and ULA addresses", () => {
    for (const a of [
      "127.0.0.1",
      "10.1.2.3",
      "172.20.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "::1",
      "fd00::1",
      "fe80::1",
      "::ffff:127.0.0.1",
      "::ffff:10.0.0.1",
      "::ffff:0:a9fe:a9fe", // 169.254.169.254, IPv4-translated
      "168.63.129.16", // Azure's wireserver
      "not-an-ip",
    ])
      expect(isBlockedAddress(a), a).toBe(true);
    for (const a of ["151.101.0.223", "8.8.8.8", "2a04:4e42::223"])
      expect(isBlockedAddress(a), a).toBe(false);
  });
});

describe("host name parser (one for allowlists, HTTP, CONNECT and SOCKS)", () => {
  it("accepts LDH names, lowercases them and drops one trailing dot", () => {
    expect(parseHostname("API.Example.TEST.")).toEqual({ ok: true, name: "api.example.test" });
    expect(parseHostname("xn--80ak6aa92e.example.test").ok).toBe(true); // an A-label is LDH
    expect(parseHostname(`${"a".repeat(63)}.test`).ok).toBe(true);
    const longest = [61, 63, 63, 63].map((n) => "a".repeat(n)).join(".");
    expect(longest.length).toBe(253);
    expect(parseHostname(longest).ok).toBe(true);
    expect(parseHostname(`${longest}.`).ok).toBe(true);
  });

  it("refuses every other spelling", () => {
    for (const bad of [
      "",
      ".",
      "a..b.test",
      "api.example.test..",
      ".api.example.test",
      "-a.test",
      "a-.test",
      `${"a".repeat(64)}.test`,
      `${"a".repeat(62)}.${"a".repeat(63)}.${"a".repeat(63)}.${"a".repeat(63)}`, // 254
      "evil.test\0.api.example.test",
      "evil.test .api.example.test",
      "allowed.example.test@evil.test",
      "evil.test#.example.test",
      "evil.test\\.example.test",
      "evil.test%2eexample.test",
      "evil.test/.example.test",
      "evil.test:80",
      "a_b.example.test",
      "аpi.example.test", // Cyrillic а
      "api.example.test\u3002", // ideographic full stop
      "\u212Apevil.example.test", // Kelvin sign: lowercases to ASCII "k"
      "\u0130.example.test", // dotted capital I: lowercases to "i" + a combining dot
      "127.0.0.1",
      "127.1",
      "2130706433",
      "0x7f.1",
      "0x7f000001",
      "0177.0.0.1",
      "1.2.3.4.5",
      "[::1]",
      "::ffff:127.0.0.1",
      "api.example.0x",
      "*.example.test",
    ])
      expect(parseHostname(bad).ok, JSON.stringify(bad)).toBe(false);
  });

  it("patterns, requests and matching use it: nothing invalid matches a wildcard", () => {
    expect(checkPattern("*.Example.Test.", "allow")).toBe("*.example.test");
    expect(() => checkPattern("*.0x7f.1", "allow")).toThrow(/addresses are not allowed/);
    expect(() => checkPattern("*.*.example.test", "allow")).toThrow(/not a host name/);
    expect(() => checkPattern("a..example.test", "allow")).toThrow(/empty label/);
    expect(matches("*.example.test", "evil.test\0.api.example.test")).toBe(false);
    expect(matches("*.example.test", "evil.test%2eapi.example.test")).toBe(false);
    expect(matches("*.example.test", "a.example.test.")).toBe(true);
    expect(() =>
      resolveEgress({ allow: ["pypi.org"] }, { ...server, staticHosts: { "pypi.org": "a.b" } }),
    ).toThrow(/network\.staticHosts\["pypi\.org"\]/);
  });

  it("splits name:port strictly", () => {
    expect(parseHostPort("api.example.test:443", null)).toEqual({
      ok: true,
      name: "api.example.test",
      port: 443,
    });
    for (const bad of [
      "api.example.test",
      "a.test:0",
      "a.test:65536",
      "a.test:+80",
      "a.test:8O",
      "[::1]:80",
      "a.test:80:80",
    ])
      expect(parseHostPort(bad, null).ok, bad).toBe(false);
  });

  it("blocks v4 addresses in every v6 spelling", () => {
    for (const a of ["::ffff:7f00:1", "::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1"])
      expect(isBlockedAddress(a), a).toBe(true);
  });
});

describe("proxy request heads", () => {
  const head = (text: string): ReturnType<typeof parseHead> =>
    parseHead(Buffer.from(`${text}\r\n\r\n`, "latin1"));

  it("rebuilds the upstream request with the URL's name as Host and without hop-by-hop headers", () => {
    const r = head(
      "POST http://API.example.test:8080/p?q=1 HTTP/1.1\r\nHost: evil.test\r\nHOST: evil2.test\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nUpgrade: websocket\r\nContent-Length: 3\r\nX-Kept: yes",
    );
    expect(r.ok && r.request.kind).toBe("http");
    if (!r.ok || r.request.kind !== "http") throw new Error("not an HTTP request");
    expect(r.request.bodyBytes).toBe(3);
    expect(upstreamHead(r.request).toString()).toBe(
      "POST /p?q=1 HTTP/1.1\r\nhost: api.example.test:8080\r\nContent-Length: 3\r\nX-Kept: yes\r\nconnection: close\r\n\r\n",
    );
  });

  it("refuses malformed and ambiguous heads with a status, never an exception", () => {
    const cases: [string, RegExp][] = [
      ["GET http://a.test@evil.test/ HTTP/1.1", /user:password/],
      ["GET http://evil.test#.a.test/ HTTP/1.1", /not allowed|characters/],
      ["GET http://evil.test\\.a.test/ HTTP/1.1", /characters/],
      ["GET http://evil.test%2ea.test/ HTTP/1.1", /characters/],
      ["GET http://2130706433/ HTTP/1.1", /addresses/],
      ["GET http://[::1]:80/ HTTP/1.1", /characters/],
      ["GET https://a.test/ HTTP/1.1", /CONNECT/],
      ["GET /relative HTTP/1.1", /absolute/],
      ["GET http://a.test/ HTTP/2.0", /request line/],
      ["GET  http://a.test/ HTTP/1.1", /request line/],
      ["GET http://a.test/ HTTP/1.1\r\n folded: x", /header line/],
      ["GET http://a.test/ HTTP/1.1\r\nBad Name: x", /header line/],
      ["GET http://a.test/ HTTP/1.1\r\nX: a\nY: b", /bare CR\/LF/],
      ["GET http://a.test/ HTTP/1.1\r\nX: \0", /control/],
      ["GET http://a.test/ HTTP/1.1\r\nX: é", /non-ASCII/],
      ["GET http://a.test/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2", /Content-Length/],
      ["GET http://a.test/ HTTP/1.1\r\nContent-Length: -1", /Content-Length/],
      ["POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked", /chunked/],
      ["CONNECT a.test HTTP/1.1", /port/],
      ["CONNECT a.test\0.b.test:443 HTTP/1.1", /control/],
      ["CONNECT 0x7f.1:443 HTTP/1.1", /addresses/],
      [`GET http://a.test/${"x".repeat(9000)} HTTP/1.1`, /request line over/],
      [`GET http://a.test/ HTTP/1.1${"\r\nX: y".repeat(101)}`, /more than 100 headers/],
    ];
    for (const [text, reason] of cases) {
      const r = head(text);
      expect(r.ok, text.slice(0, 60)).toBe(false);
      if (!r.ok) expect(r.reason, text.slice(0, 60)).toMatch(reason);
    }
  });
});

describe("SOCKS5 messages and the refusal throttle", () => {
  it("parses bounded messages and says when more is needed", () => {
    expect(parseGreeting(Buffer.from([5]))).toEqual({ state: "more" });
    expect(parseGreeting(Buffer.from([4, 1, 0])).state).toBe("bad");
    expect(parseGreeting(Buffer.from([5, 0])).state).toBe("bad");
    expect(parseGreeting(Buffer.from([5, 2, 2, 0]))).toMatchObject({ state: "done", used: 4 });
    const name = Buffer.from("a.test");
    const req = Buffer.concat([
      Buffer.from([5, 1, 0, 3, name.length]),
      name,
      Buffer.from([1, 187]),
    ]);
    expect(parseRequest(req.subarray(0, 7))).toEqual({ state: "more" });
    expect(parseRequest(req)).toMatchObject({
      state: "done",
      value: { name: "a.test", port: 443 },
    });
    expect(parseRequest(Buffer.from([5, 1, 1, 3])).state).toBe("bad");
    expect(parseRequest(Buffer.from([5, 1, 0, 9])).state).toBe("bad");
    expect(parseRequest(Buffer.from([5, 1, 0, 3, 0])).state).toBe("bad");
  });

  it("reports the first refusals one by one, then one summary per interval with exact counts", () => {
    const events: EgressEvent[] = [];
    const reporter = new RefusalReporter((e) => events.push(e), {
      first: 3,
      intervalMs: 60_000,
      rows: 2,
    });
    for (let i = 0; i < 5000; i++)
      reporter.refuse({
        host: `h${i % 300}.test`,
        port: 80,
        protocol: "http",
        reason: "host is not on the allowlist",
        address: null,
      });
    reporter.flush();
    reporter.flush(); // nothing pending: no event
    expect(events).toHaveLength(4);
    const summary = events[3]!;
    expect(summary).toMatchObject({ protocol: "summary", count: 4997 });
    expect(summary.summary).toHaveLength(3);
    expect(summary.summary!.reduce((n, r) => n + r.count, 0)).toBe(4997);
    expect(events.reduce((n, e) => n + e.count, 0)).toBe(5000);
  });
});
