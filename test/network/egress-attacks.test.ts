/**
 * A sandboxed program attacks its own egress proxy with one wildcard entry,
 * `*.example.test`, to work with. Upstreams are loopback servers behind
 * made-up names; the test override for private addresses is on, so the only
 * thing between each trick and the upstream is the proxy's parsing and policy.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EgressPolicy } from "../../src/network/policy.js";
import type { EgressEvent } from "../../src/network/proxy.js";
import { expectNothingLeft, limits, testHost } from "../helpers/sandbox.js";

let upstream: Server;
let port: number;
/** Every request that reached the upstream: the Host it carried and its path. */
const seen: { host: string; url: string }[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.push({ host: req.headers.host ?? "", url: req.url ?? "" });
    res.end(`UPSTREAM host=${req.headers.host} url=${req.url}\n`);
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  port = (upstream.address() as AddressInfo).port;
});
afterAll(() => upstream?.close());

function policy(overrides: Partial<EgressPolicy> = {}): EgressPolicy {
  return {
    allow: ["*.example.test"],
    ports: [port],
    maxBytes: 10 * 1024 * 1024,
    maxConnections: 100,
    staticHosts: { "api.example.test": "127.0.0.1", "evil.test": "127.0.0.1" },
    allowPrivateAddresses: true,
    ...overrides,
  };
}

async function run(
  python: string,
  p: EgressPolicy,
): Promise<{ stdout: string; stderr: string; events: EgressEvent[] }> {
  const host = await testHost();
  const box = await host.prepare({ diskMb: 16 });
  const events: EgressEvent[] = [];
  try {
    const r = await box.run({
      argv: ["/usr/bin/python3", "-c", `${PRELUDE}\n${python}`],
      limits: limits({ timeoutMs: 120_000 }),
      network: { policy: p, onEvent: (e) => events.push(e) },
    });
    return { stdout: r.stdout, stderr: r.stderr, events };
  } finally {
    await box.destroy();
    await expectNothingLeft(host, box);
  }
}

/** Raw clients of the proxy, as a hostile program writes them. */
const PRELUDE = `
import socket, struct
def raw(data, timeout=5):
    s = socket.create_connection(('127.0.0.1', 3128), timeout=timeout)
    try:
        s.sendall(data)
        out = b''
        while True:
            chunk = s.recv(65536)
            if not chunk: return out
            out += chunk
    except OSError as e:
        return out or ('error %s' % e).encode()
    finally:
        s.close()
def socks(name, port, atyp=3):
    addr = bytes([len(name)]) + name if atyp == 3 else name
    hello = b'\\x05\\x01\\x00' + bytes([5, 1, 0, atyp]) + addr + struct.pack('>H', port)
    return raw(hello + b'GET /via-socks HTTP/1.1\\r\\nHost: evil.test\\r\\nConnection: close\\r\\n\\r\\n')
def verdict(out):
    if b'UPSTREAM' in out: return 'REACHED ' + out[out.index(b'UPSTREAM'):].split(b'\\n')[0].decode()
    return 'refused ' + repr(out[:40])
`;

describe("a program attacking the egress proxy", () => {
  it("gets nowhere with name tricks on the HTTP, CONNECT and SOCKS paths", async () => {
    seen.length = 0;
    const P = port;
    const tunnel =
      "GET /via-connect HTTP/1.1\\r\\nHost: evil.test\\r\\nConnection: close\\r\\n\\r\\n";
    const tricks: [string, string][] = [
      ["userinfo", `b'GET http://api.example.test@evil.test:${P}/ HTTP/1.1\\r\\n\\r\\n'`],
      ["fragment", `b'GET http://evil.test#.api.example.test:${P}/ HTTP/1.1\\r\\n\\r\\n'`],
      ["backslash", `b'GET http://evil.test\\\\.api.example.test:${P}/ HTTP/1.1\\r\\n\\r\\n'`],
      ["percent", `b'GET http://evil.test%2eapi.example.test:${P}/ HTTP/1.1\\r\\n\\r\\n'`],
      ["integer", `b'GET http://2130706433:${P}/ HTTP/1.1\\r\\n\\r\\n'`],
      ["hex", `b'GET http://0x7f.1:${P}/ HTTP/1.1\\r\\n\\r\\n'`],
      ["octal", `b'GET http://0177.0.0.1:${P}/ HTTP/1.1\\r\\n\\r\\n'`],
      ["ipv6", `b'GET http://[::1]:${P}/ HTTP/1.1\\r\\n\\r\\n'`],
      ["mapped", `b'GET http://[::ffff:127.0.0.1]:${P}/ HTTP/1.1\\r\\n\\r\\n'`],
      ["unicode", `'GET http://\\u0430pi.example.test:${P}/ HTTP/1.1\\r\\n\\r\\n'.encode()`],
      [
        "connect-nul",
        `b'CONNECT localhost\\x00.x.example.test:${P} HTTP/1.1\\r\\n\\r\\n${tunnel}'`,
      ],
      ["connect-dots", `b'CONNECT api.example.test..:${P} HTTP/1.1\\r\\n\\r\\n${tunnel}'`],
      ["connect-hyphen", `b'CONNECT -x.example.test:${P} HTTP/1.1\\r\\n\\r\\n${tunnel}'`],
      [
        "connect-long",
        `b'CONNECT ' + b'a' * 64 + b'.example.test:${P} HTTP/1.1\\r\\n\\r\\n${tunnel}'`,
      ],
      ["connect-port", `b'CONNECT api.example.test:${P}x HTTP/1.1\\r\\n\\r\\n${tunnel}'`],
    ];
    const script = [
      ...tricks.map(([name, data]) => `print('${name}', verdict(raw(${data})))`),
      `print('socks-nul', verdict(socks(b'localhost\\x00.x.example.test', ${P})))`,
      `print('socks-space', verdict(socks(b'localhost .x.example.test', ${P})))`,
      `print('socks-literal', verdict(socks(b'127.0.0.1', ${P})))`,
      `print('socks-ipv4', verdict(socks(bytes([127, 0, 0, 1]), ${P}, atyp=1)))`,
      `print('socks-other', verdict(socks(b'evil.test', ${P})))`,
    ].join("\n");
    const r = await run(script, policy());
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(tricks.length + 5);
    for (const line of lines) expect(line).toMatch(/^\S+ refused /);
    expect(seen).toEqual([]);
    expect(r.events.every((e) => e.decision === "denied")).toBe(true);
  });

  it("cannot pick the upstream's virtual host, smuggle a second request or forward proxy credentials", async () => {
    seen.length = 0;
    const P = port;
    const script = [
      `print(verdict(raw(b'GET http://api.example.test:${P}/vhost HTTP/1.1\\r\\nHost: evil.test\\r\\nHost: evil2.test\\r\\n\\r\\n')))`,
      `print(verdict(raw(b'GET http://api.example.test:${P}/one HTTP/1.1\\r\\nContent-Length: 0\\r\\n\\r\\nGET /two HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n')))`,
      `print(verdict(raw(b'POST http://api.example.test:${P}/three HTTP/1.1\\r\\nContent-Length: 5\\r\\n\\r\\nhelloGET /four HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n')))`,
      `print(verdict(raw(b'POST http://api.example.test:${P}/chunked HTTP/1.1\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nGET /five HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n')))`,
    ].join("\n");
    const r = await run(script, policy());
    const host = `api.example.test:${P}`;
    expect(r.stdout.trim().split("\n")).toEqual([
      `REACHED UPSTREAM host=${host} url=/vhost`,
      `REACHED UPSTREAM host=${host} url=/one`,
      `REACHED UPSTREAM host=${host} url=/three`,
      expect.stringMatching(/^refused b'HTTP\/1\.1 411/),
    ]);
    expect(seen).toEqual([
      { host, url: "/vhost" },
      { host, url: "/one" },
      { host, url: "/three" },
    ]);
  });

  it("spends the run's connection cap on refusals: 5,000 refused attempts leave few events and no way out", async () => {
    const P = port;
    const script = [
      "outcomes = {}",
      "for i in range(5000):",
      `    out = raw(b'CONNECT evil.test:${P} HTTP/1.1\\r\\n\\r\\n', timeout=2)`,
      "    key = out[:12].decode('latin1') or 'closed'",
      "    outcomes[key] = outcomes.get(key, 0) + 1",
      "print(sorted(outcomes.items()))",
      `print('after', verdict(raw(b'GET http://api.example.test:${P}/after HTTP/1.1\\r\\n\\r\\n')))`,
    ].join("\n");
    const r = await run(script, policy({ maxConnections: 50 }));
    expect(r.stdout).toContain("('HTTP/1.1 403', 50)");
    expect(r.stdout).toMatch(/after refused/);
    expect(r.events.length).toBeLessThanOrEqual(10 + 3);
    const attempts = r.events.reduce((n, e) => n + e.count, 0);
    expect(attempts).toBe(50);
  }, 180_000);
});
