/**
 * The private-host allowance: a name on the server's `network.privateHosts`
 * may resolve to loopback and private addresses (an internal mirror); every
 * other name keeps full SSRF protection, and even a listed name never
 * reaches link-local or cloud metadata addresses. Driven through a real
 * proxy with a raw client; names are answered statically, never by DNS.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.js";
import { isPrivateAllowed, resolveEgress } from "../../src/network/policy.js";
import { EgressProxy, type EgressEvent } from "../../src/network/proxy.js";

let upstream: Server;
let port: number;
let proxy: EgressProxy;
let socketPath: string;
const events: EgressEvent[] = [];

// Loopback only: were the check broken, a name mapped to a private or metadata
// address would have the proxy dial it for real. Those addresses are checked
// below through the check itself (isPrivateAllowed), never dialled.
const NAMES = {
  "mirror.internal.test": "127.0.0.1",
  "other.internal.test": "127.0.0.1",
};

beforeAll(async () => {
  upstream = createServer((_req, res) => res.end("MIRROR\n"));
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  port = (upstream.address() as AddressInfo).port;
  const network = ConfigSchema.parse({
    network: {
      allow: Object.keys(NAMES),
      ports: [port],
      staticHosts: NAMES,
      privateHosts: ["mirror.internal.test"],
    },
  }).network;
  const policy = resolveEgress({ allow: Object.keys(NAMES) }, network)!;
  proxy = new EgressProxy(policy, (e) => events.push(e));
  socketPath = join(mkdtempSync(join(tmpdir(), "warden-private-")), "egress.sock");
  await proxy.listen(socketPath, process.getuid!());
});
afterAll(async () => {
  await proxy?.close();
  upstream?.close();
  rmSync(dirname(socketPath), { recursive: true, force: true });
});

/** A plain-HTTP request through the proxy; the status line of its answer. */
function get(host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    let got = "";
    s.on("data", (d: Buffer) => (got += d.toString("latin1")));
    s.on("error", reject);
    s.on("close", () => resolve(got.split("\r\n")[0] ?? ""));
    s.write(
      `GET http://${host}:${port}/ HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`,
    );
  });
}

describe("network.privateHosts", () => {
  it("lets a listed name reach its loopback address", async () => {
    expect(await get("mirror.internal.test")).toBe("HTTP/1.1 200 OK");
  });

  it("refuses an unlisted name that resolves to loopback", async () => {
    expect(await get("other.internal.test")).toMatch(/^HTTP\/1\.1 403/);
    const refusals = events.filter((e) => e.decision === "denied").map((e) => e.host);
    expect(refusals).toContain("other.internal.test");
  });

  it("never lets even a listed name reach a metadata address", () => {
    for (const address of [
      "169.254.169.254",
      "fe80::1",
      "fd00:ec2::254",
      "100.100.100.200",
      "0.0.0.0",
      "224.0.0.1",
      "::ffff:169.254.169.254",
    ])
      expect(isPrivateAllowed(address)).toBe(false);
    for (const address of [
      "127.0.0.1",
      "10.0.0.5",
      "172.20.0.1",
      "192.168.1.1",
      "::1",
      "fd12::1",
      "::ffff:10.0.0.1",
    ])
      expect(isPrivateAllowed(address)).toBe(true);
  });

  it("is config only: no request field or key reaches it", () => {
    // The proxy's list comes from the server config whatever the request says.
    const server = ConfigSchema.parse({
      network: { allow: ["a.test", "b.test"], privateHosts: ["a.test"] },
    }).network;
    const policy = resolveEgress({ allow: ["b.test"] }, server)!;
    expect(policy.privateHosts).toEqual(["a.test"]);
    expect(policy.allow).toEqual(["b.test"]);
    expect(() => ConfigSchema.parse({ network: { privateHosts: ["*.corp.test"] } })).toThrow(
      /not a host name/,
    );
  });
});
