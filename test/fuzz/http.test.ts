/**
 * Fuzz tier, HTTP: malformed and hostile bodies and headers at every route
 * family (executions, sessions, keys and admin, Piston, MCP, notebooks),
 * from a seeded PRNG, against a real `warden serve`. After every batch the
 * process must still be up and answer /healthz; no answer may be a 500, and
 * no 5xx may carry a stack trace or a host path. FUZZ_SEED replays a run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, startServer, type TestServer } from "../helpers/server.js";
import { closedWithin, rawConnect, statuses } from "../helpers/raw-http.js";
import { fuzzSeed } from "../helpers/fuzz.js";
import { Fuzz } from "./generators.js";

const SEED = fuzzSeed(20_251_111);
const BATCHES = 10;
const PER_BATCH = 60;

let server: TestServer;
let key: string;

beforeAll(async () => {
  // Generous rate limits: the fuzzer is one client sending fast on purpose.
  const window = { burst: 10_000, perMinute: 100_000, perHour: 1_000_000 };
  server = await startServer({
    config: { server: { rateLimits: { perKey: window, perIp: window, anonymous: window } } },
  });
  key = await createKey(server, "fuzz", "execute,sessions,admin", "fuzz");
});
afterAll(async () => {
  await server?.stop();
});

interface Target {
  family: string;
  method: string;
  path: (f: Fuzz) => string;
  template?: Record<string, unknown>;
}

const TARGETS: Target[] = [
  {
    family: "executions",
    method: "POST",
    path: () => "/v1/executions",
    template: { language: "python", code: "print(1)", wait: true },
  },
  { family: "executions", method: "GET", path: (f) => `/v1/executions/${f.segment()}` },
  { family: "executions", method: "GET", path: (f) => `/v1/executions/${f.segment()}/events` },
  {
    family: "executions",
    method: "POST",
    path: (f) => `/v1/executions/${f.segment()}/kill`,
    template: {},
  },
  {
    family: "executions",
    method: "GET",
    path: (f) => `/v1/executions/${f.segment()}/artifacts/${f.segment()}/${f.segment()}`,
  },
  {
    family: "sessions",
    method: "POST",
    path: () => "/v1/sessions",
    template: { language: "python", timeout: 60 },
  },
  {
    family: "sessions",
    method: "PUT",
    path: (f) => `/v1/sessions/${f.segment()}/files/${f.segment()}`,
    template: { content: "x", encoding: "utf8" },
  },
  {
    family: "sessions",
    method: "POST",
    path: (f) => `/v1/sessions/${f.segment()}/commands`,
    template: { command: "ls", background: false },
  },
  {
    family: "sessions",
    method: "POST",
    path: (f) => `/v1/sessions/${f.segment()}/run`,
    template: { code: "1", language: "python" },
  },
  {
    family: "keys",
    method: "POST",
    path: () => "/api/sandbox/keys",
    template: { name: "k", scopes: ["execute"] },
  },
  { family: "keys", method: "DELETE", path: (f) => `/api/sandbox/keys/${f.segment()}` },
  { family: "admin", method: "GET", path: (f) => `/api/sandbox/logs/${f.segment()}` },
  { family: "admin", method: "POST", path: (f) => `/api/sandbox/kill/${f.segment()}` },
  {
    family: "piston",
    method: "POST",
    path: () => "/api/v2/execute",
    template: { language: "zz-fuzz", version: "*", files: [{ content: "print(1)" }] },
  },
  {
    family: "mcp",
    method: "POST",
    path: () => "/mcp",
    template: { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "zz_fuzz" } },
  },
  {
    family: "notebooks",
    method: "POST",
    path: () => "/v1/notebooks",
    template: { notebook: { nbformat: 4, cells: [] }, stopOnError: true },
  },
  {
    family: "notebooks",
    method: "POST",
    path: () => "/v1/analyze",
    template: { code: "import os", language: "python" },
  },
  { family: "notebooks", method: "GET", path: (f) => `/v1/notebooks/${f.segment()}` },
];

/** Keeps generated Piston bodies from naming a real language (Piston ignores unknown fields). */
function defang(target: Target, body: string): string {
  if (target.family !== "piston") return body;
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed))
      return JSON.stringify({ ...parsed, language: "zz-fuzz" });
  } catch {
    // not JSON: stays as it is
  }
  return body;
}

async function expectHealthy(): Promise<void> {
  expect(server.process.exitCode).toBeNull();
  const res = await fetch(`${server.url}/healthz`);
  expect(res.status).toBe(200);
}

function expectNoLeak(status: number, text: string, what: string): void {
  expect(status, `${what} → ${status}: ${text.slice(0, 300)}`).not.toBe(500);
  if (status >= 500) {
    expect(text, what).not.toMatch(/\n\s+at |node:internal|\/work\/|\/src\/|\.ts:\d+/);
  }
}

describe("fuzz: hostile bodies and headers at every route family", () => {
  for (let batch = 0; batch < BATCHES; batch++) {
    it(`batch ${batch} (seed ${SEED})`, async () => {
      const f = new Fuzz(SEED + batch);
      for (let i = 0; i < PER_BATCH; i++) {
        const target = TARGETS[(batch * PER_BATCH + i) % TARGETS.length]!;
        const headers: Record<string, string> = {};
        const type = f.contentType();
        if (type !== undefined) headers["content-type"] = type;
        headers.accept = f.pick(["application/json", "text/event-stream", "*/*", "x/y"]);
        if (f.chance(0.9)) headers.authorization = `Bearer ${key}`;
        else
          headers.authorization = f.pick(["Bearer ", "Basic eA==", `Bearer ${"k".repeat(4000)}`]);
        const path = target.path(f);
        const body = target.template ? defang(target, f.body(target.template)) : undefined;
        const what = `${target.method} ${path} [${type}] ${body?.slice(0, 120) ?? ""}`;
        const res = await fetch(`${server.url}${path}`, {
          method: target.method,
          headers,
          body,
          signal: AbortSignal.timeout(30_000),
        }).catch((error: Error) => error);
        if (res instanceof Error) throw new Error(`${what}: ${res.message}`);
        // An event stream that opened is closed at once; we only judge the status.
        const text =
          headers.accept === "text/event-stream" && res.status === 200 ? "" : await res.text();
        if (text === "") await res.body?.cancel();
        expectNoLeak(res.status, text, what);
      }
      await expectHealthy();
    });
  }
});

describe("fuzz: broken HTTP on a raw socket", () => {
  const heads = (f: Fuzz): string =>
    f.pick([
      `POST /v1/executions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n{}`,
      `POST /v1/executions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      `POST /v1/executions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n`,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Nul: a\u0000b\r\n\r\n`,
      `GET /healthz\r\n\r\n`,
      `${"A".repeat(300)} / HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n`,
      `GET /healthz HTTP/1.1\r\n\r\n`,
      `GET /v1/executions/%E0%A4%A HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n\r\n`,
      `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n[[[`,
      `\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003`,
      Buffer.from(Array.from({ length: 200 }, () => f.int(256))).toString("latin1"),
    ]);

  it("answers each with a 4xx or a close, and stays up", async () => {
    const f = new Fuzz(SEED);
    for (let i = 0; i < 60; i++) {
      const c = await rawConnect(server.url);
      c.write(Buffer.from(heads(f), "latin1"));
      await closedWithin(c, 1500);
      c.close();
      for (const status of statuses(c.received())) expect(status).toBeLessThan(500);
      expect(c.received()).not.toMatch(/\n\s+at |node:internal/);
    }
    await expectHealthy();
  });
});
