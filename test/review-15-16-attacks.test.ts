/**
 * Attacks found reviewing issues 15 and 16 that no feature's own attack test
 * covered. Each runs the hostile request against a real `warden serve` on
 * loopback and checks it failed AND Warden still answers.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "./helpers/server.js";
import { makeTar } from "./judging/tar.js";

let server: TestServer;

beforeAll(async () => {
  // Suites of at most 1 MiB: the per-user bound (its default) is reached in a few hundred.
  // The rate limits are raised only to keep the test quick: at their defaults (3000 a
  // minute a key) they would still let one key store ~190 GiB of 64 MiB suites an hour.
  const fast = { burst: 10_000, perMinute: 100_000, perHour: 1_000_000 };
  server = await startServer({
    config: {
      judging: { maxSuiteMb: 1 },
      server: { rateLimits: { perKey: fast, perIp: fast } },
    },
  });
});
afterAll(async () => {
  await server?.stop();
});

async function tokenFor(userId: string, scopes = ["execute"]): Promise<string> {
  const made = await server.request("POST", "/api/sandbox/keys", {
    body: { name: `${userId}-key`, userId, scopes },
  });
  return ((await made.json()) as { token: string }).token;
}

/** Bytes of every file under `dir`. */
function diskBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  return total;
}

describe("test suites", () => {
  it("one key cannot fill Warden's disk with suites: uploads stop at a stated bound per user", async () => {
    const token = await tokenFor("suite-flooder");
    // Almost 1 MiB of stdin per suite (the tar adds headers and padding).
    const suite = makeTar([{ name: "big.in", content: "x".repeat(1024 * 1024 - 4096) }]);
    const before = diskBytes(server.dataDir);
    let accepted = 0;
    let refusal: { status: number; message: string } | null = null;
    for (let i = 0; i < 400 && !refusal; i++) {
      const r = await fetch(`${server.url}/v1/test-suites`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/x-tar" },
        body: suite,
      });
      if (r.status === 201) accepted++;
      else
        refusal = {
          status: r.status,
          message: ((await r.json()) as { error: { message: string } }).error.message,
        };
    }
    expect(refusal, `${accepted} suites of ~1 MiB were all kept`).not.toBeNull();
    expect(refusal!.status).toBe(400);
    expect(refusal!.message).toMatch(/judging\.maxSuiteStorageMbPerUser/);
    // What it stored is within the bound (256 MiB by default), not 400 MiB.
    expect(diskBytes(server.dataDir) - before).toBeLessThan(260 * 1024 * 1024);
    // Another user is not affected, and Warden still answers.
    const other = await tokenFor("suite-neighbour");
    const small = makeTar([{ name: "a.in", content: "1" }]);
    const r = await fetch(`${server.url}/v1/test-suites`, {
      method: "POST",
      headers: { authorization: `Bearer ${other}`, "content-type": "application/x-tar" },
      body: small,
    });
    expect(r.status).toBe(201);
    expect((await server.request("GET", "/healthz")).status).toBe(200);
  }, 180_000);
});

describe("judge runs", () => {
  let judged: TestServer;
  beforeAll(async () => {
    judged = await startServer({ config: { judging: { maxRunSeconds: 3 } } });
  });
  afterAll(async () => {
    await judged?.stop();
  });

  it("a run of many slow cases cannot hold its slot (and escape CPU quotas) past judging.maxRunSeconds", async () => {
    // Each case may take the whole timeout; unbounded, maxTests × maxTimeout is
    // 1000 × 900 s of one slot, and a cpuSeconds quota learns of it only at the end.
    const r = await judged.request("POST", "/v1/executions", {
      body: {
        language: "python",
        code: "import time\ntime.sleep(1.5)\nprint('ok')",
        timeout: 10,
        tests: Array.from({ length: 8 }, () => ({ expectedOutput: "ok" })),
      },
    });
    expect(r.status).toBe(200);
    const result = (await r.json()) as {
      status: string;
      tests: { cases: { verdict: string; message: string | null }[] };
    };
    const ran = result.tests.cases.filter((c) => c.verdict !== "skipped");
    const skipped = result.tests.cases.filter((c) => c.verdict === "skipped");
    // Started within the 3 s budget: at most 3 cases of 1.5 s (one may begin just before it ends).
    expect(ran.length).toBeLessThanOrEqual(3);
    expect(skipped.length).toBe(8 - ran.length);
    expect(skipped[0]!.message).toMatch(/judging\.maxRunSeconds/);
    expect(result.status).toBe("failed");
    expect((await judged.request("GET", "/healthz")).status).toBe(200);
  }, 120_000);
});
