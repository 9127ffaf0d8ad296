/**
 * Attacks on the HTTP server itself, from a raw socket: one client, with or
 * without a key, tries to hold the service (slow or idle connections,
 * oversized heads, pipelined floods, many connections or streams, deep JSON,
 * floods of refused requests). Each must fail, cheaply, and Warden must keep
 * answering. Limits are set small here so the test is quick; their defaults
 * are in src/config/schema.ts and docs/boundary/http.md.
 */
import { Agent, request as httpRequest } from "node:http";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, startServer, type TestServer } from "../helpers/server.js";
import {
  closedWithin,
  dribble,
  firstBody,
  rawConnect,
  statuses,
  type RawClient,
} from "../helpers/raw-http.js";

const limits = {
  headersTimeoutMs: 1500,
  requestTimeoutMs: 3000,
  keepAliveTimeoutMs: 1000,
  maxRequestsPerSocket: 50,
  maxConnections: 30,
  maxConnectionsPerIp: 20,
  maxOpenRequestsPerKey: 4,
  maxOpenRequestsPerIp: 6,
  refusalLogPerWindow: 5,
  refusalLogWindowMs: 2000,
};

let server: TestServer;
let key: string;
let otherKey: string;

beforeAll(async () => {
  server = await startServer({ config: { server: { connections: limits } } });
  key = await createKey(server, "conn-a", "execute,sessions", "conn-a");
  otherKey = await createKey(server, "conn-b", "execute", "conn-b");
});
afterAll(async () => {
  await server?.stop();
});

async function healthy(): Promise<void> {
  const res = await fetch(`${server.url}/healthz`);
  expect(res.status).toBe(200);
}

const head = (path: string, extra = ""): string =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}`;

describe("slow and idle connections", () => {
  it("closes a connection that dribbles its headers (slowloris) with 408", async () => {
    const c = await rawConnect(server.url);
    c.write(head("/healthz"));
    // One header byte every 200 ms: each byte is activity, but the deadline is for the whole head.
    void dribble(c, "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 200, 15_000);
    expect(await closedWithin(c, 10_000)).toBe(true);
    expect(statuses(c.received())).toEqual([408]);
    await healthy();
  });

  it("closes a connection that dribbles its body with 408", async () => {
    const c = await rawConnect(server.url);
    c.write(
      `POST /v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"language":"python","code":"`,
    );
    void dribble(c, "x", 200, 20_000);
    expect(await closedWithin(c, 12_000)).toBe(true);
    expect(statuses(c.received())).toEqual([408]);
    await healthy();
  });

  it("closes a connection that never sends a byte", async () => {
    const c = await rawConnect(server.url);
    expect(await closedWithin(c, 10_000)).toBe(true);
    await healthy();
  });

  it("closes an idle keep-alive connection after keepAliveTimeoutMs", async () => {
    const c = await rawConnect(server.url);
    c.write(`${head("/healthz")}\r\n`);
    expect(await closedWithin(c, 10_000)).toBe(true);
    expect(statuses(c.received())).toEqual([200]);
  });
});

describe("oversized request heads", () => {
  it("answers 431 in the API's error shape to headers over maxHeaderBytes", async () => {
    const c = await rawConnect(server.url);
    c.write(`${head("/healthz", `X-Big: ${"a".repeat(20_000)}\r\n`)}\r\n`);
    await closedWithin(c, 10_000);
    expect(statuses(c.received())).toEqual([431]);
    const body = firstBody(c.received()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("INVALID_REQUEST");
    expect(body.error.message).toMatch(/^headers: .*16384 bytes/);
    await healthy();
  });

  it("answers 414 to a URL over maxUrlBytes, without echoing it", async () => {
    for (const path of [`/v1/executions/${"a".repeat(10_000)}`, `/healthz?${"a".repeat(10_000)}`]) {
      const res = await server.request("GET", path, { token: key });
      expect(res.status).toBe(414);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("INVALID_REQUEST");
      expect(body.error.message).toMatch(/^url: longer than 8192 bytes/);
    }
    // A long path segment under the limit is refused by the router, also in our shape.
    const res = await server.request("GET", `/v1/executions/${"a".repeat(500)}`, { token: key });
    expect(res.status).toBe(414);
    expect(await res.text()).not.toContain("a".repeat(500));
  });
});

describe("floods on one socket and many sockets", () => {
  it("serves at most maxRequestsPerSocket of 1,000 pipelined requests, then closes", async () => {
    const c = await rawConnect(server.url);
    c.write(`${head("/healthz")}\r\n`.repeat(1000));
    expect(await closedWithin(c, 30_000)).toBe(true);
    const codes = statuses(c.received());
    expect(codes.filter((s) => s === 200).length).toBeLessThanOrEqual(limits.maxRequestsPerSocket);
    expect(codes.every((s) => s === 200 || s === 503)).toBe(true);
    await healthy();
  });

  /** Opens `n` sockets from `from` and counts how many get an answer to /healthz. */
  async function openAndAsk(n: number, from: string): Promise<[RawClient[], number]> {
    const clients = await Promise.all(
      Array.from({ length: n }, () => rawConnect(server.url, from)),
    );
    await new Promise((r) => setTimeout(r, 300));
    for (const c of clients) c.write(`${head("/healthz")}\r\n`);
    await Promise.all(clients.map((c) => closedWithin(c, 1500)));
    const answered = clients.filter((c) => statuses(c.received()).includes(200)).length;
    return [clients, answered];
  }

  it("caps connections per client address and in total", async () => {
    const [first, fromOne] = await openAndAsk(40, "127.0.0.2");
    expect(fromOne).toBe(limits.maxConnectionsPerIp);
    const [second, fromTwo] = await openAndAsk(20, "127.0.0.3");
    expect(fromOne + fromTwo).toBeLessThanOrEqual(limits.maxConnections);
    for (const c of [...first, ...second]) c.close();
    await new Promise((r) => setTimeout(r, 200));
    const [third, again] = await openAndAsk(1, "127.0.0.2");
    expect(again).toBe(1);
    for (const c of third) c.close();
    await healthy();
  });
});

describe("open streams", () => {
  /** Opens an SSE stream and leaves it unread; resolves with its status. */
  function openStream(id: string, token: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${server.url}/v1/executions/${id}/events`, {
        headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
        agent: false,
      });
      req.on("response", (res) => {
        if (res.statusCode === 200) {
          streams.push(() => req.destroy());
          resolve({ status: 200, body: "" });
          return;
        }
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });
  }
  const streams: (() => void)[] = [];

  it("refuses SSE streams past maxOpenRequestsPerKey and per IP, and frees them on close", async () => {
    const started = await server.request("POST", "/v1/executions", {
      token: key,
      body: { language: "bash", code: "sleep 60", wait: false },
    });
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    const others: string[] = [];
    try {
      const mine = [];
      for (let i = 0; i < 6; i++) mine.push(await openStream(id, key));
      expect(mine.filter((s) => s.status === 200).length).toBe(limits.maxOpenRequestsPerKey);
      const refused = mine.find((s) => s.status === 429)!;
      expect(refused.body).toMatch(/maxOpenRequestsPerKey/);
      // The other key's streams count against the same address: only 2 more fit.
      const second = await server.request("POST", "/v1/executions", {
        token: otherKey,
        body: { language: "bash", code: "sleep 60", wait: false },
      });
      others.push(((await second.json()) as { id: string }).id);
      const other = [];
      for (let i = 0; i < 3; i++) other.push(await openStream(others[0]!, otherKey));
      expect(other.map((s) => s.status)).toEqual([200, 200, 429]);
      expect(other[2]!.body).toMatch(/maxOpenRequestsPerIp/);
      for (const close of streams.splice(0)) close();
      await new Promise((r) => setTimeout(r, 300));
      expect((await openStream(id, key)).status).toBe(200);
    } finally {
      for (const close of streams.splice(0)) close();
      await server.request("POST", `/v1/executions/${id}/kill`, { token: key, body: {} });
      for (const other of others)
        await server.request("POST", `/v1/executions/${other}/kill`, {
          token: otherKey,
          body: {},
        });
    }
  });
});

describe("deep and wide JSON", () => {
  const bodies: [string, string, RegExp][] = [
    ["100k [", "[".repeat(100_000), /nested deeper than 64 levels/],
    ["100k [ closed", "[".repeat(100_000) + "]".repeat(100_000), /nested deeper than 64/],
    ["100k {", '{"a":'.repeat(100_000) + "1" + "}".repeat(100_000), /nested deeper than 64/],
    [
      "20k keys",
      `{${Array.from({ length: 20_001 }, (_, i) => `"k${i}":0`).join(",")}}`,
      /more than 10000 members/,
    ],
  ];
  const routes = ["/v1/executions", "/api/v2/execute", "/v1/sessions", "/mcp"];
  it.each(bodies)("refuses %s with a clear 400 on every JSON route", async (_name, raw, why) => {
    for (const route of routes) {
      const res = await server.request("POST", route, {
        token: key,
        raw,
        headers: { "content-type": "application/json", accept: "application/json" },
      });
      expect(res.status, route).toBe(400);
      // Piston's routes answer in Piston's shape, {message}.
      const body = (await res.json()) as { error?: { code: string; message: string } } & {
        message?: string;
      };
      if (route !== "/api/v2/execute") expect(body.error?.code).toBe("INVALID_REQUEST");
      expect(body.error?.message ?? body.message, route).toMatch(why);
    }
    await healthy();
  });
});

describe("floods of refused requests", () => {
  it("10,000 bad-key requests leave a bounded number of audit rows and log lines", async () => {
    const before = server.count("events");
    const logsBefore = server.logs.length;
    const agent = new Agent({ keepAlive: true, maxSockets: 10 });
    const send = (i: number): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpRequest(`${server.url}/v1/runtimes`, {
          agent,
          headers: { authorization: `Bearer bad-key-${i}` },
        });
        req.on("response", (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
        req.end();
      });
    const codes = new Map<number, number>();
    const total = 10_000;
    for (let i = 0; i < total; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, (_, j) => send(i + j)));
      for (const c of batch) codes.set(c, (codes.get(c) ?? 0) + 1);
    }
    agent.destroy();
    expect((codes.get(401) ?? 0) + (codes.get(429) ?? 0)).toBe(total);
    // Let the last window close so its summary is written.
    await new Promise((r) => setTimeout(r, 2 * limits.refusalLogWindowMs + 500));
    const rows = server.count("events") - before;
    expect(rows).toBeLessThan(500);
    // Nothing is lost: rows written one by one plus the summaries' counts make 10,000.
    const db = new Database(join(server.dataDir, "warden.db"), { readonly: true });
    const one = (sql: string): number => (db.prepare(sql).get() as { n: number | null }).n ?? 0;
    const kinds = "('auth_failure', 'rate_limited')";
    const single = one(
      `SELECT COUNT(*) AS n FROM events WHERE id > ${before} AND event IN ${kinds}`,
    );
    const summed = one(
      `SELECT SUM(json_extract(data, '$.count')) AS n FROM events WHERE id > ${before}
       AND event = 'refusals_suppressed' AND json_extract(data, '$.kind') IN ${kinds}`,
    );
    db.close();
    expect(single + summed).toBe(total);
    const lines = server.logs.length - logsBefore;
    expect(lines).toBeLessThan(1000);
    await healthy();
  }, 180_000);
});
