/**
 * Egress through the proxy, against servers this test starts on loopback
 * (made-up names resolve through the proxy's static entries; nothing ever
 * leaves this machine).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EgressPolicy } from "../../src/network/policy.js";
import type { EgressEvent } from "../../src/network/proxy.js";
import { expectNothingLeft, limits, testHost } from "../helpers/sandbox.js";

let http: Server;
let https: Server;
let httpPort: number;
let httpsPort: number;

beforeAll(async () => {
  http = createServer((req, res) => {
    if (req.url === "/big") {
      res.end(Buffer.alloc(4 * 1024 * 1024, "x"));
      return;
    }
    res.end(`hello ${req.url}`);
  });
  const dir = mkdtempSync(join(tmpdir(), "warden-tls-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=secure.test",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ],
    { stdio: "ignore" },
  );
  https = createTlsServer(
    { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) },
    (req, res) => res.end(`secure ${req.url}`),
  );
  await Promise.all([
    new Promise<void>((r) => http.listen(0, "127.0.0.1", r)),
    new Promise<void>((r) => https.listen(0, "127.0.0.1", r)),
  ]);
  httpPort = (http.address() as AddressInfo).port;
  httpsPort = (https.address() as AddressInfo).port;
});
afterAll(() => {
  http?.close();
  https?.close();
});

function policy(overrides: Partial<EgressPolicy> = {}): EgressPolicy {
  return {
    allow: ["api.test", "secure.test"],
    ports: [httpPort, httpsPort],
    maxBytes: 10 * 1024 * 1024,
    maxConnections: 50,
    staticHosts: { "api.test": "127.0.0.1", "secure.test": "127.0.0.1", "other.test": "127.0.0.1" },
    // These test servers live on loopback, which real policy refuses (tested below).
    allowPrivateAddresses: true,
    ...overrides,
  };
}

async function run(
  script: string,
  p: EgressPolicy | null,
): Promise<{
  stdout: string;
  stderr: string;
  status: string;
  events: EgressEvent[];
  networkBytes: number;
}> {
  const host = await testHost();
  const box = await host.prepare({ diskMb: 16 });
  const events: EgressEvent[] = [];
  try {
    const r = await box.run({
      argv: ["/bin/bash", "-c", script],
      limits: limits({ timeoutMs: 30_000 }),
      network: p ? { policy: p, onEvent: (e) => events.push(e) } : undefined,
    });
    return {
      stdout: r.stdout,
      stderr: r.stderr,
      status: r.status,
      events,
      networkBytes: r.metrics.networkBytes,
    };
  } finally {
    await box.destroy();
    await expectNothingLeft(host, box);
  }
}

describe("egress through the proxy", () => {
  it("an allowed name is reached over HTTP and HTTPS from Python, Node's fetch and curl", async () => {
    const r = await run(
      [
        `python3 -c "import urllib.request; print(urllib.request.urlopen('http://api.test:${httpPort}/py').read().decode())"`,
        `python3 -c "import ssl, urllib.request; print(urllib.request.urlopen('https://secure.test:${httpsPort}/pys', context=ssl._create_unverified_context()).read().decode())"`,
        `node -e "fetch('http://api.test:${httpPort}/node').then(r => r.text()).then(console.log)"`,
        `NODE_TLS_REJECT_UNAUTHORIZED=0 node -e "fetch('https://secure.test:${httpsPort}/nodes').then(r => r.text()).then(console.log)" 2>/dev/null`,
        `curl -s http://api.test:${httpPort}/curl; echo`,
        `curl -sk https://secure.test:${httpsPort}/curls; echo`,
      ].join("\n"),
      policy(),
    );
    expect(r.stdout.split("\n").filter(Boolean)).toEqual([
      "hello /py",
      "secure /pys",
      "hello /node",
      "secure /nodes",
      "hello /curl",
      "secure /curls",
    ]);
    expect(r.events.filter((e) => e.decision === "allowed").length).toBe(6);
    expect(r.events.every((e) => e.bytes > 0)).toBe(true);
    expect(r.networkBytes).toBeGreaterThan(0);
  });

  it("a name off the allowlist gets a clear refusal and an event", async () => {
    const r = await run(
      `curl -s http://other.test:${httpPort}/; echo; curl -sk https://other.test:${httpsPort}/ ; echo "rc=$?"`,
      policy(),
    );
    expect(r.stdout).toContain("warden: egress to other.test");
    expect(r.stdout).toContain("rc=56"); // CONNECT refused with 403
    expect(r.events.map((e) => [e.decision, e.host, e.reason])).toEqual([
      ["denied", "other.test", "host is not on the allowlist"],
      ["denied", "other.test", "host is not on the allowlist"],
    ]);
  });

  it("the kernel's own tables show no way out: only lo, no routes; only the proxy leads out", async () => {
    // Nothing here aims at an address off loopback: the kernel's interface and
    // route tables are the proof, and the only connect is to the host's loopback port.
    const r = await run(
      [
        `python3 - <<'EOF'`,
        "import os, socket",
        "devs = [l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]]",
        "print('interfaces', ','.join(devs))",
        "print('v4 routes', len(open('/proc/net/route').read().splitlines()[1:]))",
        "RTF_REJECT = 0x0200",
        "v6 = [l.split() for l in open('/proc/net/ipv6_route').read().splitlines()]",
        "usable = [f for f in v6 if f[9] != 'lo' or not (int(f[8], 16) & RTF_REJECT) and f[0] != '0' * 31 + '1']",
        "print('v6 usable routes', len(usable))",
        "def attempt(name, fn):",
        "    try:",
        "        fn(); print(name, 'OPEN')",
        "    except OSError as e:",
        "        print(name, type(e).__name__, e.errno)",
        `attempt('tcp-host-loopback', lambda: socket.create_connection(('127.0.0.1', ${httpPort}), timeout=2))`,
        "attempt('resolve', lambda: socket.getaddrinfo('api.test', 80))",
        "EOF",
        `curl -s --noproxy '*' -m 3 http://api.test:${httpPort}/ ; echo "noproxy rc=$?"`,
      ].join("\n"),
      policy(),
    );
    expect(r.stdout).toContain("interfaces lo\n");
    expect(r.stdout).toContain("v4 routes 0\n");
    expect(r.stdout).toContain("v6 usable routes 0\n");
    // The host's loopback is not the sandbox's: nothing listens on that port here.
    expect(r.stdout).toContain("tcp-host-loopback ConnectionRefusedError");
    expect(r.stdout).toContain("resolve gaierror");
    expect(r.stdout).toContain("noproxy rc=6");
    expect(r.stdout).not.toContain("OPEN");
  });

  it("an allowed name that resolves to loopback is refused without the test override", async () => {
    const r = await run(
      `curl -s http://api.test:${httpPort}/; echo`,
      policy({ allowPrivateAddresses: false, staticHosts: { "api.test": "127.0.0.1" } }),
    );
    expect(r.stdout).toContain("denied by policy");
    expect(r.events[0]).toMatchObject({
      decision: "denied",
      reason: "name resolves to a refused address range",
      address: "127.0.0.1",
    });
    // Metadata and private ranges: test/unit/network-policy.test.ts (no address off loopback here).
  });

  it("only allowed ports; addresses instead of names are refused; the byte cap cuts a large download", async () => {
    const ports = await run(
      `curl -s http://api.test:${httpPort}/; echo`,
      policy({ ports: [httpsPort] }),
    );
    expect(ports.events[0]).toMatchObject({
      decision: "denied",
      port: httpPort,
      reason: "port is not allowed",
    });
    const literal = await run(
      `curl -s -x socks5://127.0.0.1:3128 http://127.0.0.1:${httpPort}/; echo "rc=$?"`,
      policy(),
    );
    expect(literal.events[0]).toMatchObject({
      decision: "denied",
      reason: expect.stringContaining("addresses are not allowed"),
    });
    const big = await run(
      `curl -s http://api.test:${httpPort}/big | wc -c`,
      policy({ maxBytes: 1024 * 1024 }),
    );
    expect(Number(big.stdout.trim())).toBeLessThan(1.1 * 1024 * 1024);
    expect(big.networkBytes).toBeLessThan(1.2 * 1024 * 1024);
  });

  it("without a network field nothing gets out and no proxy exists", async () => {
    const r = await run(
      `curl -s -m 3 http://api.test:${httpPort}/; echo "rc=$?"; echo "proxy=$HTTP_PROXY"; ls /.warden`,
      null,
    );
    expect(r.stdout).toContain("rc=6");
    expect(r.stdout).toContain("proxy=\n");
    expect(r.stdout).not.toContain("egress.sock");
    expect(r.events).toEqual([]);
  });
});
