/** Rate limits, and what a crash or a shutdown leaves: nothing running, nothing stuck. */
import { existsSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { startServer } from "../helpers/server.js";

describe("rate limits", () => {
  it("answers 429 with RateLimit-* and Retry-After past a key's burst, and audits it", async () => {
    const server = await startServer({
      config: { server: { rateLimits: { perKey: { burst: 3, perMinute: 100, perHour: 1000 } } } },
    });
    try {
      const statuses: number[] = [];
      let limited: Response | undefined;
      for (let i = 0; i < 6; i++) {
        const res = await server.request("GET", "/v1/runtimes");
        statuses.push(res.status);
        if (res.status === 429) limited = res;
      }
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      expect(statuses).toContain(429);
      expect(limited!.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(limited!.headers.get("ratelimit-remaining")).toBe("0");
      expect(((await limited!.json()) as { error: { code: string } }).error.code).toBe(
        "RATE_LIMIT",
      );
      expect(server.count("events", "event = 'rate_limited'")).toBeGreaterThan(0);
    } finally {
      await server.stop();
    }
  });
});

describe("lifecycle of the service", () => {
  it("after a crash mid-run, a restart leaves no orphaned sandbox and no record stuck in running", async () => {
    const first = await startServer();
    const res = await first.request("POST", "/v1/executions", {
      body: { language: "bash", code: "sleep 600", wait: false },
    });
    const { id } = (await res.json()) as { id: string };
    await new Promise((r) => setTimeout(r, 500));
    expect(first.count("executions", "status = 'running'")).toBe(1);
    await first.stop("SIGKILL");
    const second = await startServer({ dataDir: first.dataDir });
    try {
      const record = (await (await second.request("GET", `/v1/executions/${id}`)).json()) as {
        status: string;
        error: { message: string };
      };
      expect(record.status).toBe("error");
      expect(record.error.message).toMatch(/stopped/);
      // The audit trail says it was queued, started and lost (the start committed before the run).
      const trail = (await (await second.request("GET", `/api/sandbox/logs/${id}`)).json()) as {
        event: string;
      }[];
      expect(trail.map((e) => e.event)).toEqual(["queued", "started", "orphaned"]);
      expect(second.count("executions", "status IN ('queued', 'running')")).toBe(0);
      // The janitor of the new process removed the dead one's sandbox.
      const config = loadConfig({ env: {} });
      const boxes = existsSync(`${config.runDir}/boxes`)
        ? readdirSync(`${config.runDir}/boxes`)
        : [];
      const deadOwner = `b${first.process.pid}-`;
      expect(boxes.filter((b) => b.startsWith(deadOwner))).toEqual([]);
      expect(
        readdirSync("/sys/fs/cgroup/memory/warden").filter((c) => c.startsWith(deadOwner)),
      ).toEqual([]);
    } finally {
      await second.stop();
    }
  });

  it("SIGTERM lets a running execution finish, refuses new ones, records every final state", async () => {
    const server = await startServer({ config: { server: { shutdownGracePeriod: 20 } } });
    const running = server.request("POST", "/v1/executions", {
      body: { language: "bash", code: "sleep 1; echo finished" },
    });
    await new Promise((r) => setTimeout(r, 400));
    const stopped = server.stop("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    // New work is refused while the running execution finishes.
    const late = await server
      .request("POST", "/v1/executions", { body: { language: "bash", code: "echo late" } })
      .then(
        (r) => r.status,
        () => "refused",
      );
    expect(late).not.toBe(200);
    const result = (await (await running).json()) as { status: string; stdout: string };
    expect(result).toMatchObject({ status: "completed", stdout: "finished\n" });
    expect(await stopped).toBe(0);
    expect(server.count("executions", "status IN ('queued', 'running')")).toBe(0);
    expect(server.count("executions", "status = 'completed'")).toBe(1);
  });
});
