/**
 * Hostile use of the usage and quota API through `warden serve`: a key
 * without admin reads only its own usage and changes nothing; a report over
 * years of hours is refused at its row cap; user ids that look like
 * spreadsheet formulas arrive in a CSV export as inert text; a flood of
 * submissions gets no more executions than its quota; a rotated token is
 * refused at once. Warden answers after each.
 */
import Database from "better-sqlite3";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;

async function newKey(
  userId: string,
  scopes = ["execute"],
): Promise<{ id: string; token: string }> {
  const res = await server.request("POST", "/api/sandbox/keys", {
    body: { name: userId, userId, scopes },
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; token: string };
}

/** Usage rows written straight into the server's database (as many as a test needs). */
function seed(rows: { hour: number; userId: string; keyId?: string; cpuMs?: number }[]): void {
  const db = new Database(join(server.dataDir, "warden.db"));
  db.pragma("busy_timeout = 5000");
  const insert = db.prepare(
    "INSERT INTO usage_hourly (hour, user_id, key_id, executions, cpu_ms) VALUES (?, ?, ?, 1, ?)",
  );
  db.transaction(() => {
    for (const r of rows) insert.run(r.hour, r.userId, r.keyId ?? "", r.cpuMs ?? 1);
  })();
  db.close();
}

async function alive(): Promise<void> {
  expect((await server.request("GET", "/healthz", { token: null })).status).toBe(200);
}

beforeAll(async () => {
  server = await startServer({ config: { usage: { maxRows: 50, maxExportRows: 50 } } });
});
afterAll(async () => {
  await server?.stop();
});

describe("usage and quota attacks", () => {
  it("a key without admin cannot read others' usage, set quotas or change keys", async () => {
    const mallory = await newKey("mallory", ["execute", "sessions", "delegate"]);
    const victim = await newKey("victim");
    seed([{ hour: Date.UTC(2030, 0, 1), userId: "victim", cpuMs: 999 }]);
    const as = (method: string, path: string, body?: unknown) =>
      server.request(method, path, { token: mallory.token, body });
    for (const [method, path, body] of [
      ["GET", "/api/sandbox/usage?userId=victim"],
      ["GET", "/api/sandbox/usage?format=csv"],
      ["GET", "/api/sandbox/quotas"],
      [
        "PUT",
        "/api/sandbox/quotas",
        {
          subjectType: "user",
          subjectId: "mallory",
          metric: "executions",
          period: "day",
          limit: 1e9,
        },
      ],
      ["DELETE", "/api/sandbox/quotas/quota_000000000000"],
      ["PATCH", `/api/sandbox/keys/${mallory.id}`, { scopes: ["admin"] }],
      ["POST", `/api/sandbox/keys/${victim.id}/rotate`],
    ] as [string, string, unknown?][]) {
      const res = await as(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
    }
    // Its own usage only: another user's id is not a parameter of /v1/usage.
    const own = await as("GET", "/v1/usage?from=2029-12-01&to=2030-02-01&userId=victim");
    expect(own.status).toBe(400);
    const mine = (await (await as("GET", "/v1/usage?from=2029-12-01&to=2030-02-01")).json()) as {
      totals: { cpuSeconds: number };
    };
    expect(mine.totals.cpuSeconds).toBe(0);
    expect(server.count("events", "event = 'quota_set'")).toBe(0);
    await alive();
  });

  it("refuses a report over years of hours at its row cap, and nonsense dates, naming the field", async () => {
    const start = Date.UTC(2029, 0, 1);
    seed(Array.from({ length: 200 }, (_, i) => ({ hour: start + i * 3_600_000, userId: "busy" })));
    const res = await server.request(
      "GET",
      "/api/sandbox/usage?from=2000-01-01&to=2199-12-31&granularity=hour",
    );
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/more than 50 rows \(usage.maxRows\)/);
    const csv = await server.request(
      "GET",
      "/api/sandbox/usage?from=2000-01-01&to=2199-12-31&granularity=hour&format=csv",
    );
    expect(csv.status).toBe(400);
    expect(((await csv.json()) as { error: { message: string } }).error.message).toMatch(
      /usage.maxExportRows/,
    );
    // Coarser, the same range answers.
    const months = await server.request(
      "GET",
      "/api/sandbox/usage?from=2000-01-01&to=2199-12-31&granularity=month",
    );
    expect(months.status).toBe(200);
    for (const q of [
      "from=0001-01-01",
      "to=9999-12-31",
      "from=yesterday",
      "from=2031-01-01&to=2030-01-01",
    ]) {
      const bad = await server.request("GET", `/api/sandbox/usage?${q}`);
      expect(bad.status, q).toBe(400);
      expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(
        /^(from|to)/,
      );
    }
    await alive();
  });

  it("exports user ids that look like formulas as inert CSV text", async () => {
    const hour = Date.UTC(2031, 5, 1);
    const hostile = ['=HYPERLINK("http://x")', "@SUM(A1)", "-2+3", "+cmd", "plain"];
    seed(hostile.map((userId) => ({ hour, userId })));
    const res = await server.request(
      "GET",
      "/api/sandbox/usage?from=2031-06-01&to=2031-06-02&groupBy=user&format=csv",
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    const lines = (await res.text()).trim().split("\r\n");
    expect(lines[0]).toMatch(/^period,userId,keyId,executions/);
    const ids = lines.slice(1).map((l) => l.split(",")[1]!);
    for (const id of ids) expect(id, id).not.toMatch(/^"?[=+\-@]/);
    expect(ids).toContain("'@SUM(A1)");
    expect(ids).toContain("plain");
    const nd = await server.request(
      "GET",
      "/api/sandbox/usage?from=2031-06-01&to=2031-06-02&groupBy=user&format=ndjson",
    );
    const rows = (await nd.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { userId: string });
    expect(rows.map((r) => r.userId).sort()).toEqual([...hostile].sort());
    await alive();
  });

  it("a flood of submissions gets no more executions than the quota", async () => {
    const flood = await newKey("flood");
    await server.request("PUT", "/api/sandbox/quotas", {
      body: {
        subjectType: "user",
        subjectId: "flood",
        metric: "executions",
        period: "day",
        limit: 3,
      },
    });
    const answers = await Promise.all(
      Array.from({ length: 16 }, () =>
        server.request("POST", "/v1/executions", {
          token: flood.token,
          body: { language: "python", code: "print(1)", wait: false },
        }),
      ),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(13);
    await alive();
  });

  it("rotates a token (the old one is refused at once) and checks a key's new egress list", async () => {
    const k = await newKey("rota");
    expect((await server.request("GET", "/v1/usage", { token: k.token })).status).toBe(200);
    const rotated = await server.request("POST", `/api/sandbox/keys/${k.id}/rotate`);
    expect(rotated.status).toBe(200);
    const { token } = (await rotated.json()) as { token: string };
    expect((await server.request("GET", "/v1/usage", { token: k.token })).status).toBe(401);
    expect((await server.request("GET", "/v1/usage", { token })).status).toBe(200);
    const wide = await server.request("PATCH", `/api/sandbox/keys/${k.id}`, {
      body: { networkAllow: ["evil.example"] },
    });
    expect(wide.status).toBe(403); // as at creation: outside the server's allowlist
    const renamed = await server.request("PATCH", `/api/sandbox/keys/${k.id}`, {
      body: { name: "renamed", scopes: ["execute", "sessions"] },
    });
    expect(await renamed.json()).toMatchObject({
      name: "renamed",
      scopes: ["execute", "sessions"],
    });
    expect((await server.request("PATCH", `/api/sandbox/keys/${k.id}`, { body: {} })).status).toBe(
      400,
    );
    expect(server.count("events", "event IN ('key_rotated', 'key_updated')")).toBe(2);
    await alive();
  });
});
