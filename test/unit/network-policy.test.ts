import { describe, expect, it } from "vitest";
import {
  checkPattern,
  covered,
  isBlockedAddress,
  matches,
  resolveEgress,
} from "../../src/network/policy.js";

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
      "not-an-ip",
    ])
      expect(isBlockedAddress(a), a).toBe(true);
    for (const a of ["151.101.0.223", "8.8.8.8", "2a04:4e42::223"])
      expect(isBlockedAddress(a), a).toBe(false);
  });
});
