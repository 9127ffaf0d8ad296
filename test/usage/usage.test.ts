/**
 * Usage accounting through `warden serve`, tried as a new user would: real
 * sandboxes report what they used, and /v1/usage adds up to exactly what the
 * results reported; memory MB-seconds, disk peak and egress are measured;
 * a quota stops the next execution with QUOTA_EXCEEDED.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecutionUsage } from "../../src/contract/usage.js";
import { startServer, type TestServer } from "../helpers/server.js";

let upstream: Server;
let port: number;
let server: TestServer;

interface Result {
  id: string;
  status: string;
  metrics: { cpuTimeMs: number; peakMemoryBytes: number; usage: ExecutionUsage };
}

async function newKey(userId: string, scopes = ["execute"]): Promise<string> {
  const res = await server.request("POST", "/api/sandbox/keys", {
    body: { name: userId, userId, scopes, networkAllow: ["files.pkg.test"] },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { token: string }).token;
}

async function run(token: string, code: string, extra: object = {}): Promise<Result> {
  const res = await server.request("POST", "/v1/executions", {
    token,
    body: { language: "python", code, ...extra },
  });
  const body = (await res.json()) as Result;
  expect(body.status, JSON.stringify(body)).toBe("completed");
  return body;
}

beforeAll(async () => {
  upstream = createServer((req, res) => res.end(Buffer.alloc(64 * 1024, "u")));
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  port = (upstream.address() as AddressInfo).port;
  server = await startServer({
    config: {
      network: {
        allow: ["*.pkg.test"],
        ports: [port],
        staticHosts: { "files.pkg.test": "127.0.0.1" },
        allowPrivateAddresses: true, // the upstream is a loopback test server
      },
      usage: { prices: { currency: "EUR", cpuSecond: 0.5, gbSecond: 0.01 } },
    },
  });
});
afterAll(async () => {
  upstream?.close();
  await server?.stop();
});

describe("usage accounting", () => {
  it("adds up: /v1/usage shows exactly the CPU-seconds the user's results reported", async () => {
    const token = await newKey("ada");
    const results: Result[] = [];
    for (const n of [200_000, 400_000, 100_000])
      results.push(await run(token, `s = 0\nfor i in range(${n}): s += i\nprint(s)`));
    const cpuMs = results.reduce((sum, r) => sum + r.metrics.usage.cpuMs, 0);
    // Python has no compile step: the usage is the run's own reading.
    for (const r of results) expect(r.metrics.usage.cpuMs).toBe(r.metrics.cpuTimeMs);
    expect(cpuMs).toBeGreaterThan(0);
    const res = await server.request("GET", "/v1/usage?granularity=hour", { token });
    expect(res.status).toBe(200);
    const report = (await res.json()) as {
      rows: { cpuSeconds: number; executions: number }[];
      totals: { cpuSeconds: number; executions: number; wallSeconds: number };
      cost: { currency: string; cpu: number; total: number };
    };
    expect(report.totals.executions).toBe(3);
    expect(report.totals.cpuSeconds).toBe(cpuMs / 1000);
    expect(report.rows.reduce((s, r) => s + r.executions, 0)).toBe(3);
    expect(report.cost.currency).toBe("EUR");
    expect(report.cost.cpu).toBeCloseTo((cpuMs / 1000) * 0.5, 5);
    // Another user's key sees only its own (nothing yet).
    const other = await newKey("bea");
    const theirs = (await (await server.request("GET", "/v1/usage", { token: other })).json()) as {
      totals: { executions: number };
    };
    expect(theirs.totals.executions).toBe(0);
  });

  it("integrates memory over the run: 0 < MB-seconds ≤ peak × wall", async () => {
    const token = await newKey("cy");
    const r = await run(
      token,
      "import time\nb = bytearray(40 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\ntime.sleep(0.6)\nprint(len(b))",
    );
    const u = r.metrics.usage;
    expect(u.memoryMbMs).toBeGreaterThan(0);
    expect(u.memoryMbMs).toBeLessThanOrEqual((u.peakMemoryBytes / 1024 / 1024) * u.wallMs);
    // Held 40 MiB for most of 0.6 s: at least 40 × 0.3 MiB-seconds.
    expect(u.memoryMbMs).toBeGreaterThan(40 * 300);
  });

  it("sees the disk peak of a program that writes 5 MB to /tmp and deletes it", async () => {
    const token = await newKey("dee");
    const r = await run(
      token,
      "import os, time\nwith open('/tmp/big', 'wb') as f: f.write(os.urandom(5 * 1024 * 1024))\ntime.sleep(0.5)\nos.remove('/tmp/big')\nprint('ok')",
    );
    expect(r.metrics.usage.diskPeakBytes).toBeGreaterThanOrEqual(5 * 1024 * 1024);
    expect(r.metrics.usage.outputBytes).toBe(3);
  });

  it("counts egress bytes and connections through an allowed destination", async () => {
    const token = await newKey("eve");
    const code = [
      "import urllib.request",
      `for i in range(2): print(len(urllib.request.urlopen('http://files.pkg.test:${port}/x').read()))`,
    ].join("\n");
    const r = await run(token, code, { network: { allow: ["files.pkg.test"] } });
    expect(r.metrics.usage.egressConnections).toBe(2);
    expect(r.metrics.usage.egressBytes).toBeGreaterThan(2 * 64 * 1024);
    const usage = (await (
      await server.request("GET", "/api/sandbox/usage?userId=eve&groupBy=user")
    ).json()) as { rows: { userId: string; egressBytes: number; egressConnections: number }[] };
    expect(usage.rows).toMatchObject([
      { userId: "eve", egressBytes: r.metrics.usage.egressBytes, egressConnections: 2 },
    ]);
  });

  it("stops the N+1th execution of a day with QUOTA_EXCEEDED (429, headers, body)", async () => {
    const token = await newKey("flo");
    const put = await server.request("PUT", "/api/sandbox/quotas", {
      body: {
        subjectType: "user",
        subjectId: "flo",
        metric: "executions",
        period: "day",
        limit: 2,
      },
    });
    expect(put.status).toBe(200);
    const quota = (await put.json()) as { id: string; used: number; resetsAt: string };
    expect(quota.used).toBe(0);
    await run(token, "print(1)");
    await run(token, "print(2)");
    const refused = await server.request("POST", "/v1/executions", {
      token,
      body: { language: "python", code: "print(3)" },
    });
    expect(refused.status).toBe(429);
    const body = (await refused.json()) as {
      error: { code: string; details: Record<string, unknown> };
    };
    const tomorrow = new Date();
    tomorrow.setUTCHours(24, 0, 0, 0);
    expect(body.error.code).toBe("QUOTA_EXCEEDED");
    expect(body.error.details).toMatchObject({
      metric: "executions",
      period: "day",
      limit: 2,
      used: 2,
      resetsAt: tomorrow.toISOString(),
    });
    expect(refused.headers.get("x-quota-reset")).toBe(tomorrow.toISOString());
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    // The Piston route is refused too, and the refusal is audited.
    const piston = await server.request("POST", "/api/v2/execute", {
      token,
      body: { language: "python", version: "*", files: [{ content: "print(4)" }] },
    });
    expect(piston.status).toBe(429);
    expect(server.count("events", "event = 'quota_exceeded'")).toBeGreaterThanOrEqual(2);
    const listed = (await (
      await server.request("GET", "/api/sandbox/quotas?userId=flo")
    ).json()) as {
      quotas: { id: string; used: number }[];
    };
    expect(listed.quotas).toMatchObject([{ id: quota.id, used: 2 }]);
    // Removed, it no longer stops anything.
    expect((await server.request("DELETE", `/api/sandbox/quotas/${quota.id}`)).status).toBe(200);
    await run(token, "print(5)");
  });
});

describe("session usage", () => {
  it("records a session's life, CPU and memory when it ends; a session-hours quota stops the next one", async () => {
    const token = await newKey("ses", ["execute", "sessions"]);
    const created = await server.request("POST", "/v1/sessions", { token, body: {} });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const ran = await server.request("POST", `/v1/sessions/${id}/commands`, {
      token,
      body: { command: "python3 -c 's=0\nfor i in range(300000): s+=i'" },
    });
    expect(ran.status).toBe(200);
    expect((await server.request("DELETE", `/v1/sessions/${id}`, { token })).status).toBe(204);
    const report = (await (await server.request("GET", "/v1/usage", { token })).json()) as {
      totals: {
        sessions: number;
        sessionSeconds: number;
        cpuSeconds: number;
        memoryMbSeconds: number;
      };
    };
    expect(report.totals.sessions).toBe(1);
    expect(report.totals.sessionSeconds).toBeGreaterThan(0);
    expect(report.totals.cpuSeconds).toBeGreaterThan(0);
    expect(report.totals.memoryMbSeconds).toBeGreaterThan(0);
    await server.request("PUT", "/api/sandbox/quotas", {
      body: {
        subjectType: "user",
        subjectId: "ses",
        metric: "sessionHours",
        period: "month",
        limit: 0.000001,
      },
    });
    const refused = await server.request("POST", "/v1/sessions", { token, body: {} });
    expect(refused.status).toBe(429);
    expect(
      ((await refused.json()) as { error: { details: { metric: string } } }).error.details.metric,
    ).toBe("sessionHours");
  });
});
