/** The REST API and the admin API against a real `warden serve`, as a client sees them. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, eventually, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let userKey: string;

beforeAll(async () => {
  server = await startServer({
    config: {
      server: { rateLimits: { perKey: { burst: 1000, perMinute: 100_000, perHour: 1_000_000 } } },
    },
  });
  userKey = await createKey(server, "alice-app", "execute", "alice");
});
afterAll(async () => {
  await server?.stop();
});

interface Result {
  id: string;
  status: string;
  stdout: string;
  exitCode: number | null;
  metrics: { executionTimeMs: number; queueTimeMs: number };
}

describe("REST /v1", () => {
  it("runs code and answers with the result shape", async () => {
    const res = await server.request("POST", "/v1/executions", {
      token: userKey,
      body: { language: "python", code: "print('Hello, World!')" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    const result = (await res.json()) as Result;
    expect(result).toMatchObject({
      status: "completed",
      success: true,
      exitCode: 0,
      stdout: "Hello, World!\n",
    });
    const got = await server.request("GET", `/v1/executions/${result.id}`, { token: userKey });
    expect(await got.json()).toMatchObject({
      id: result.id,
      status: "completed",
      userId: "alice",
      language: "python",
    });
    // The audit trail of that execution, through the admin API.
    const logs = (await (await server.request("GET", `/api/sandbox/logs/${result.id}`)).json()) as {
      event: string;
      userId: string;
    }[];
    expect(logs.map((l) => l.event)).toEqual(["queued", "started", "completed"]);
    expect(logs[0]).toMatchObject({ userId: "alice", executionId: result.id, level: "info" });
  });

  it("runs asynchronously and streams output as Server-Sent Events", async () => {
    const res = await server.request("POST", "/v1/executions", {
      token: userKey,
      body: {
        language: "python",
        code: "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.2)",
        wait: false,
      },
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(res.headers.get("location")).toBe(`/v1/executions/${id}`);
    const stream = await server.request("GET", `/v1/executions/${id}/events`, { token: userKey });
    expect(stream.headers.get("content-type")).toContain("text/event-stream");
    const text = await stream.text();
    const events = text
      .trim()
      .split("\n\n")
      .map((block) => ({
        event: /^event: (.*)$/m.exec(block)?.[1],
        data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null") as unknown,
      }));
    const stdout = events
      .filter((e) => e.event === "stdout")
      .map((e) => (e.data as { data: string }).data);
    expect(stdout.join("")).toBe("0\n1\n2\n");
    expect(events.at(-1)).toMatchObject({ event: "result", data: { id, status: "completed" } });
  });

  it("kills a running execution from the user's API", async () => {
    const res = await server.request("POST", "/v1/executions", {
      token: userKey,
      body: { language: "bash", code: "sleep 60", wait: false },
    });
    const { id } = (await res.json()) as { id: string };
    await new Promise((r) => setTimeout(r, 300));
    const kill = await server.request("POST", `/v1/executions/${id}/kill`, { token: userKey });
    expect(await kill.json()).toMatchObject({ success: true, status: "killed" });
    // Others cannot see it at all.
    const other = await createKey(server, "bob-app", "execute", "bob");
    expect((await server.request("GET", `/v1/executions/${id}`, { token: other })).status).toBe(
      404,
    );
  });

  it("times out sleep(1000) with timeout 5 at about five seconds", async () => {
    const res = await server.request("POST", "/v1/executions", {
      token: userKey,
      body: { language: "python", code: "import time\ntime.sleep(1000)", timeout: 5 },
    });
    const result = (await res.json()) as Result;
    expect(result.status).toBe("timeout");
    expect(result.metrics.executionTimeMs).toBeGreaterThanOrEqual(5000);
  }, 30_000);

  it("ten parallel sleeps from one user: five run, five wait, the admin metrics show it", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await server.request("POST", "/v1/executions", {
        token: userKey,
        body: { language: "python", code: "import time\ntime.sleep(60)", wait: false },
      });
      ids.push(((await res.json()) as { id: string }).id);
    }
    // Wait until all ten are admitted (running or queued), however busy the machine is.
    await eventually(async () => {
      const m = (await (await server.request("GET", "/api/sandbox/metrics")).json()) as {
        activeExecutions: number;
        queuedExecutions: number;
      };
      return m.activeExecutions === 5 && m.queuedExecutions === 5;
    });
    const user = await (await server.request("GET", "/api/sandbox/metrics/alice")).json();
    expect(user).toMatchObject({
      userId: "alice",
      activeExecutions: 5,
      queuedExecutions: 5,
      utilizationPercent: 100,
    });
    const system = await (await server.request("GET", "/api/sandbox/metrics")).json();
    expect(system).toMatchObject({
      activeExecutions: 5,
      queuedExecutions: 5,
      totalUsers: 1,
      utilizationPercent: 10,
    });
    const states = await Promise.all(
      ids.map(
        async (id) =>
          (
            (await (
              await server.request("GET", `/v1/executions/${id}`, { token: userKey })
            ).json()) as Result
          ).status,
      ),
    );
    expect(states.filter((s) => s === "running")).toHaveLength(5);
    expect(states.filter((s) => s === "queued")).toHaveLength(5);
    // Admin kill, at the spec's path, for all of them.
    for (const id of ids)
      expect(await (await server.request("POST", `/api/sandbox/kill/${id}`)).json()).toEqual({
        success: true,
      });
    await eventually(async () => {
      const m = (await (await server.request("GET", "/api/sandbox/metrics")).json()) as {
        activeExecutions: number;
        queuedExecutions: number;
      };
      return m.activeExecutions === 0 && m.queuedExecutions === 0;
    });
  });

  it("lets only delegate keys act for another user", async () => {
    const denied = await server.request("POST", "/v1/executions", {
      token: userKey,
      body: { language: "bash", code: "true", userId: "mallory" },
    });
    expect(denied.status).toBe(403);
    const backend = await createKey(server, "backend", "execute,delegate", "backend");
    const ok = await server.request("POST", "/v1/executions", {
      token: backend,
      body: { language: "bash", code: "true", userId: "end-user-7" },
    });
    const { id } = (await ok.json()) as Result;
    expect(await (await server.request("GET", `/v1/executions/${id}`)).json()).toMatchObject({
      userId: "end-user-7",
    });
  });

  it("lists the runtimes it can run, and serves health, readiness, metrics and OpenAPI", async () => {
    const runtimes = (await (
      await server.request("GET", "/v1/runtimes", { token: userKey })
    ).json()) as { language: string }[];
    expect(runtimes.map((r) => r.language)).toEqual(
      expect.arrayContaining(["python", "javascript", "bash", "c"]),
    );
    expect(await (await server.request("GET", "/healthz", { token: null })).json()).toEqual({
      status: "ok",
    });
    expect(await (await server.request("GET", "/readyz", { token: null })).json()).toMatchObject({
      status: "ready",
      checks: { isolation: "ok", store: "ok" },
    });
    const metrics = await (await server.request("GET", "/metrics", { token: null })).text();
    for (const name of [
      "warden_executions_total",
      "warden_execution_duration_seconds",
      "warden_queue_depth",
      "warden_queue_wait_seconds",
      "warden_active_sandboxes",
      "warden_rejections_total",
      "warden_retries_total",
    ])
      expect(metrics).toContain(name);
    expect(metrics).toMatch(/warden_executions_total\{language="python",status="completed"\} \d+/);
    const openapi = (await (
      await server.request("GET", "/openapi.json", { token: null })
    ).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining([
        "/v1/executions",
        "/v1/executions/{id}",
        "/api/sandbox/metrics",
        "/api/v2/execute",
      ]),
    );
    const docs = await server.request("GET", "/docs/", { token: null });
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain("swagger");
  });

  it("sends security headers on every response", async () => {
    const res = await server.request("GET", "/healthz", { token: null });
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    // No TLS here: asking browsers to upgrade every asset to https would break the docs page.
    expect(res.headers.get("content-security-policy")).not.toContain("upgrade-insecure-requests");
    expect(res.headers.get("permissions-policy")).toContain("camera=()");
    expect(res.headers.get("strict-transport-security")).toBeNull(); // no TLS configured
    expect(res.headers.get("access-control-allow-origin")).toBeNull(); // CORS off
  });
});
