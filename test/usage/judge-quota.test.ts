/**
 * A test-case run is one admission, and a CPU-seconds quota learns a run's
 * use only when it ends. Between cases the run asks whether what it has used
 * so far would pass the user's quota: past it the remaining cases are skipped
 * and the run ends with QUOTA_EXCEEDED, instead of burning every case first.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

// Each case spends about 0.25 s of CPU.
const BURN = [
  "import time",
  "t = time.process_time()",
  "while time.process_time() - t < 0.25: pass",
  "print('ok')",
].join("\n");

describe("a CPU-seconds quota during a test-case run", () => {
  it("stops the run between cases once its own use reaches the quota", async () => {
    const token = await createKey(server, "judge-quota", "execute", "quinn");
    const put = await server.request("PUT", "/api/sandbox/quotas", {
      body: {
        subjectType: "user",
        subjectId: "quinn",
        metric: "cpuSeconds",
        period: "day",
        limit: 0.6,
      },
    });
    expect(put.status).toBe(200);
    const res = await server.request("POST", "/v1/executions", {
      token,
      body: {
        language: "python",
        code: BURN,
        tests: Array.from({ length: 10 }, () => ({ expectedOutput: "ok" })),
      },
    });
    expect(res.status).toBe(200);
    const result = (await res.json()) as {
      status: string;
      error: { code: string; message: string } | null;
      tests: { passed: number; skipped: number; cases: { verdict: string; message: string }[] };
    };
    expect(result.status).toBe("failed");
    expect(result.error?.code).toBe("QUOTA_EXCEEDED");
    // 0.6 s of quota at about 0.25 s a case: two or three cases run, never all ten.
    expect(result.tests.passed).toBeGreaterThanOrEqual(2);
    expect(result.tests.passed).toBeLessThanOrEqual(4);
    expect(result.tests.skipped).toBe(10 - result.tests.passed);
    const skipped = result.tests.cases.filter((c) => c.verdict === "skipped");
    expect(skipped[0]!.message).toMatch(/quota: cpuSeconds per day is used up/);
    // The next execution is refused at admission: the run's use is in the rows now.
    const next = await server.request("POST", "/v1/executions", {
      token,
      body: { language: "python", code: "print(1)" },
    });
    expect(next.status).toBe(429);
  }, 120_000);
});
