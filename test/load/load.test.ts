/**
 * A bounded load test on loopback: 2,000 trivial executions from 20
 * concurrent clients through the REST API. Only intended refusals (429 from
 * the rate limits) are allowed, and nothing may be left behind.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import autocannon from "autocannon";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { config as defaults, KEEP_WARM_CGROUP } from "../helpers/sandbox.js";
import { startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;

beforeAll(async () => {
  // Per-user concurrency at 20 so the scheduler, not the queue cap, shapes the load; the
  // key's rate limit sits above what 20 clients can offer, the IP's default one stays.
  server = await startServer({
    config: {
      maxSandboxesPerUser: 20,
      maxQueuedPerUser: 100,
      server: { rateLimits: { perKey: { burst: 500, perMinute: 30_000, perHour: 600_000 } } },
    },
  });
});
afterAll(async () => {
  await server?.stop();
});

describe("load", () => {
  it("2,000 executions at concurrency 20: no errors but intended 429s, nothing left behind", async () => {
    const result = await autocannon({
      url: `${server.url}/v1/executions`,
      method: "POST",
      connections: 20,
      amount: 2000,
      timeout: 60,
      headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ language: "python", code: "print(1)", timeout: 30 }),
    });
    const limited = result.statusCodeStats?.["429"]?.count ?? 0;
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result["2xx"] + limited).toBe(2000);
    expect(result["2xx"]).toBeGreaterThan(1900);
    // Every accepted execution completed.
    expect(server.count("executions", "status = 'completed'")).toBe(result["2xx"]);
    expect(server.count("executions", "status != 'completed'")).toBe(0);

    // Nothing of the server's sandboxes remains: no box, no cgroup, no process, no lease.
    const owner = `b${server.process.pid}-`;
    const boxes = readdirSync(`${defaults.runDir}/boxes`).filter((b) => b.startsWith(owner));
    expect(boxes).toEqual([]);
    const cgroupParent = `/sys/fs/cgroup/memory/${defaults.sandbox.cgroupParent}`;
    // The live server's two keep-warm cgroups (and the sleeping process moved between
    // them) are the launcher's, not a sandbox's: they go when the server stops.
    if (existsSync(cgroupParent))
      expect(
        readdirSync(cgroupParent).filter((c) => c.startsWith(owner) && !KEEP_WARM_CGROUP.test(c)),
      ).toEqual([]);
    // No process anywhere still sits in one of the server's sandbox cgroups. (Test files run in
    // parallel and reuse released uids, so the uid range itself says nothing here.)
    const leaked = readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const cgroup = readFileSync(`/proc/${p}/cgroup`, "utf8");
          return (
            cgroup.includes(`/${defaults.sandbox.cgroupParent}/${owner}`) &&
            !KEEP_WARM_CGROUP.test(cgroup)
          );
        } catch {
          return false;
        }
      });
    expect(leaked).toEqual([]);
  }, 300_000);
});
