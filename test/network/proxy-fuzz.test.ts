/**
 * Fuzz tier for the egress proxy: a few hundred malformed request heads and
 * SOCKS messages from a seeded PRNG, thrown straight at the proxy's Unix
 * socket (no sandbox needed to be hostile here). After each case the proxy
 * must have answered or hung up within its head deadline, must answer the
 * next valid request, and the upstream must only ever see the allowed Host.
 */
import { mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fuzzSeed, prng } from "../helpers/fuzz.js";
import { EgressProxy, type EgressEvent } from "../../src/network/proxy.js";

let upstream: Server;
let port: number;
let proxy: EgressProxy;
let socketPath: string;
const seen: string[] = [];
const events: EgressEvent[] = [];
const HEAD_TIMEOUT_MS = 200;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.push(req.headers.host ?? "");
    res.end("UPSTREAM\n");
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  port = (upstream.address() as AddressInfo).port;
  proxy = new EgressProxy(
    {
      // Exactly the one name with a static address: a mutated name that still
      // matched a wildcard would be looked up in the host's real DNS.
      allow: ["api.example.test"],
      ports: [port],
      maxBytes: 1 << 30,
      maxConnections: 100_000,
      staticHosts: { "api.example.test": "127.0.0.1", "evil.test": "127.0.0.1" },
      allowPrivateAddresses: true,
    },
    (e) => events.push(e),
    { headTimeoutMs: HEAD_TIMEOUT_MS },
  );
  socketPath = join(mkdtempSync(join(tmpdir(), "warden-fuzz-")), "egress.sock");
  await proxy.listen(socketPath, process.getuid!());
});
afterAll(async () => {
  await proxy?.close();
  upstream?.close();
});

/** Sends bytes, optionally half-closes, and collects the answer until the proxy hangs up. */
function exchange(data: Buffer, end: boolean, limitMs: number): Promise<Buffer | "timeout"> {
  return new Promise((resolve) => {
    const s = connect(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      // A tunnel the proxy opened stays open while the client is silent: that is no hang.
      const got = Buffer.concat(chunks);
      const tunnel =
        got.includes("200 Connection Established") ||
        got.subarray(0, 4).equals(Buffer.from([5, 0, 5, 0]));
      resolve(tunnel ? got : "timeout");
    }, limitMs);
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("error", () => undefined);
    s.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    s.write(data);
    if (end) s.end();
  });
}

function cases(count: number, seed: number): { data: Buffer; end: boolean }[] {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const int = (n: number): number => Math.floor(rand() * n);
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  const valid = (): string =>
    `GET http://api.example.test:${port}/ok HTTP/1.1\r\nHost: evil.test\r\nX-A: b\r\n\r\n`;
  const hosts = [
    "api.example.test",
    "evil.test",
    "a\0.example.test",
    "0x7f.1",
    "[::1]",
    "%2e",
    "é.example.test",
    "a".repeat(300),
  ];
  const mutate = (text: string): Buffer => {
    const buf = Buffer.from(text, "latin1");
    for (let i = int(4); i >= 0; i--) {
      const at = int(buf.length);
      switch (int(4)) {
        case 0:
          buf[at] = int(256);
          break;
        case 1:
          buf[at] = pick([0x0d, 0x0a, 0x00, 0x20, 0x3a, 0x40, 0x23, 0x5c, 0x25]);
          break;
        default:
          return Buffer.concat([buf.subarray(0, at), bytes(int(8)), buf.subarray(at + int(4))]);
      }
    }
    return buf;
  };
  const socksName = (name: Buffer, p = port): Buffer =>
    Buffer.concat([
      Buffer.from([5, 1, 0, 5, 1, 0, 3, name.length & 0xff]),
      name,
      Buffer.from([p >> 8, p & 0xff]),
    ]);
  const makers: (() => Buffer)[] = [
    () => mutate(valid()),
    () => mutate(`CONNECT ${pick(hosts)}:${port} HTTP/1.1\r\n\r\n`),
    () =>
      Buffer.from(
        `GET http://${pick(hosts)}:${port}/ HTTP/1.1\r\nHost: ${pick(hosts)}\r\n\r\n`,
        "latin1",
      ),
    () => bytes(1 + int(600)),
    () => Buffer.concat([Buffer.from([5]), bytes(int(300))]),
    () => mutate(socksName(Buffer.from(pick(hosts), "latin1")).toString("latin1")),
    () => socksName(bytes(int(256))),
    () =>
      Buffer.from(
        `GET http://api.example.test:${port}/ HTTP/1.1\r\n${"X: y\r\n".repeat(int(400))}`,
      ),
    () =>
      Buffer.from(
        `GET http://api.example.test:${port}/${"a".repeat(int(20_000))} HTTP/1.1\r\n\r\n`,
      ),
    () =>
      Buffer.from(
        `POST http://api.example.test:${port}/ HTTP/1.1\r\nContent-Length: ${pick(["x", "-1", "1, 2", "99999999999999999999"])}\r\n\r\n`,
      ),
  ];
  return Array.from({ length: count }, () => ({ data: pick(makers)(), end: rand() < 0.5 }));
}

describe("egress proxy fuzz", () => {
  it("survives 300 malformed heads and SOCKS messages and answers the next valid request each time", async () => {
    const valid = Buffer.from(
      `GET http://api.example.test:${port}/ok HTTP/1.1\r\nHost: evil.test\r\n\r\n`,
    );
    const heap = process.memoryUsage().heapUsed;
    for (const [i, c] of cases(300, fuzzSeed(0x5eed)).entries()) {
      // Half-closed or not, every case ends within the head deadline (plus slack for a slow machine).
      const answer = await exchange(c.data, c.end, HEAD_TIMEOUT_MS + 3_000);
      expect(answer, `case ${i}: ${c.data.toString("latin1").slice(0, 80)}`).not.toBe("timeout");
      if (i % 10 === 0) {
        const ok = await exchange(valid, false, 10_000);
        expect(ok.toString(), `valid request after case ${i}`).toContain("UPSTREAM");
      }
    }
    // Only the allowed name ever reached the upstream as its Host.
    expect(new Set(seen)).toEqual(new Set([`api.example.test:${port}`]));
    expect(process.memoryUsage().heapUsed - heap).toBeLessThan(64 * 1024 * 1024);
    // Refusals were throttled: a handful of events standing for all of them.
    await proxy.close(); // reports what is still pending
    const denied = events.filter((e) => e.decision === "denied");
    expect(denied.length).toBeLessThanOrEqual(40);
    expect(denied.reduce((n, e) => n + e.count, 0)).toBeGreaterThan(100);
  }, 300_000);
});
