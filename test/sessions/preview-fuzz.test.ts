/**
 * Fuzz tier for previews: a few hundred malformed upstream answers, made from
 * a seeded PRNG (set FUZZ_SEED to replay one), served by the hostile
 * server inside a session on the plain and the upgrade path. Whatever comes
 * back, no planted header reaches the client, every status is one a server may
 * give or Warden's own 502/504, and Warden stays up with its memory in bound.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fuzzSeed, prng } from "../helpers/fuzz.js";
import { rssBytes, startServer, type TestServer } from "../helpers/server.js";
import {
  FORBIDDEN_RESPONSE_HEADERS,
  headNames,
  hostileSession,
  ownWorld,
  rawGet,
  rawUpgrade,
  expectNoForbidden,
  sessionsKey,
} from "./preview-hostile.js";

const SEED = fuzzSeed(11);
const CASES = 300;
const PORT = 8000;

const HEADER_POOL = [
  "Content-Type: text/html",
  "Content-Length: 5",
  "Content-Length: 99999",
  "Transfer-Encoding: chunked",
  "Set-Cookie: sid=planted",
  "WWW-Authenticate: Basic",
  "Access-Control-Allow-Origin: *",
  "X-Frame-Options: ALLOWALL",
  "Strict-Transport-Security: max-age=1",
  "Clear-Site-Data: *",
  "Link: </x.js>; rel=preload",
  "Refresh: 0",
  "Location: //evil.example/",
  "Location: https://evil.example/",
  "Location: /inside",
  "Upgrade: echo",
  "Connection: Upgrade",
  "Cache-Control: no-store",
  'ETag: "x"',
  "X-Planted: 1",
];

function generate(random: () => number): Buffer {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const int = (n: number): number => Math.floor(random() * n);
  const status =
    random() < 0.2
      ? String(int(1000)).padStart(3, "0")
      : pick(["200", "101", "302", "401", "404", "500", "103"]);
  const lines = [
    `${pick(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/1.1", "HTTX/1.1"])} ${status} ${pick(["OK", "", "\u00ff"])}`,
  ];
  if (status === "101" && random() < 0.7) lines.push("Upgrade: echo", "Connection: Upgrade");
  for (let i = int(8); i > 0; i--) lines.push(pick(HEADER_POOL));
  let text = `${lines.join("\r\n")}\r\n\r\n${pick(["hello", "5\r\nhello\r\n0\r\n\r\n", "zz\r\n", ""])}`;
  let bytes = Buffer.from(text, "latin1");
  // Mutations: bytes that break framing, cut-offs, repeats.
  for (let m = int(4); m > 0; m--) {
    const at = int(bytes.length + 1);
    switch (int(6)) {
      case 0:
        bytes = Buffer.concat([
          bytes.subarray(0, at),
          Buffer.from([pick([0, 10, 13, 0x7f, 0xff, 32, 58])]),
          bytes.subarray(at),
        ]);
        break;
      case 1:
        bytes = bytes.subarray(0, at);
        break;
      case 2:
        if (bytes.length > 0) bytes[Math.min(at, bytes.length - 1)] = int(256);
        break;
      case 3:
        bytes = Buffer.concat([
          bytes.subarray(0, at),
          Buffer.from(`${pick(HEADER_POOL)}\r\n`),
          bytes.subarray(at),
        ]);
        break;
      case 4:
        text = bytes.toString("latin1");
        bytes = Buffer.from(
          text.replaceAll("\r\n", pick(["\n", "\r", "\r\n\r\n", "\r\n "])),
          "latin1",
        );
        break;
      default:
        bytes = Buffer.concat([bytes, Buffer.alloc(int(20_000), pick(["a", "\r\n", "X: y\r\n"]))]);
    }
  }
  return bytes;
}

let server: TestServer;
let ann: string;
let base: string;
const answers = Array.from({ length: CASES }, (_, i) => generate(prng(SEED * 100_003 + i)));

beforeAll(async () => {
  const many = { burst: 10_000, perMinute: 100_000, perHour: 1_000_000 };
  server = await startServer({
    env: ownWorld("preview-fuzz", 782_000),
    config: { server: { rateLimits: { perKey: many, perIp: many } } },
  });
  ann = await sessionsKey(server, "ann");
  base = await hostileSession(server, ann, PORT, {
    "fuzz.json": JSON.stringify(answers.map((a) => a.toString("base64"))),
  });
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

/** Runs `task` over 0..n-1, `width` at a time. */
async function pool(n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

const allowedStatus = (status: number): boolean => status >= 200 && status <= 599;

describe(`preview fuzz (seed ${SEED}, ${CASES} answers)`, () => {
  it("survives every answer on the plain and the upgrade path", async () => {
    const pid = server.process.pid!;
    const before = rssBytes(pid);
    let peak = before;
    const outcomes = new Map<string, number>();
    const count = (key: string): void => void outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    await pool(CASES, 8, async (i) => {
      const what = `seed ${SEED} case ${i}: ${JSON.stringify(answers[i]!.toString("latin1").slice(0, 200))}`;
      const path = `${base}/ports/${PORT}/f/${i}`;
      try {
        const r = await rawGet(server, path, { authorization: `Bearer ${ann}` }, 45_000);
        expect(allowedStatus(r.status) && r.status !== 429, what).toBe(true);
        expectNoForbidden(r.headers, what);
        count(`plain ${r.status}`);
      } catch (error) {
        // A body that breaks after its head went out ends the connection: allowed, counted.
        const code = (error as NodeJS.ErrnoException).code;
        expect(["ECONNRESET"], `${what}: ${String(error)}`).toContain(code);
        count(`plain reset`);
      }
      if (i % 2 === 0) {
        const u = await rawUpgrade(server, path, { authorization: `Bearer ${ann}` }, 45_000);
        u.socket.destroy();
        if (u.head !== "") {
          expect(allowedStatus(u.status) || u.status === 101, what).toBe(true);
          const names = headNames(u.head);
          for (const name of FORBIDDEN_RESPONSE_HEADERS)
            expect(names, `${what} ${name}`).not.toContain(name);
        }
        count(`upgrade ${u.status}`);
      }
      if (i % 20 === 0) peak = Math.max(peak, rssBytes(pid));
    });
    console.error(`preview fuzz seed ${SEED}:`, Object.fromEntries([...outcomes].sort()));
    expect(server.process.exitCode).toBeNull();
    expect((await server.request("GET", "/healthz", { token: null })).status).toBe(200);
    const still = await rawGet(server, `${base}/ports/${PORT}/m/forbidden`, {
      authorization: `Bearer ${ann}`,
    });
    expect(still.status).toBe(200);
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);
  }, 240_000);
});
