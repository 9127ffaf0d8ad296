/**
 * The warm pool inside `warden serve`: the prewarmed language starts before
 * the first request, a REST execution takes a started box, and the pool shows
 * in the admin metrics and in /metrics; stopping the service ends every box.
 */
import { afterAll, describe, expect, it } from "vitest";
import { eventually, startServer, type TestServer } from "../helpers/server.js";
import { helpersOf } from "../helpers/sandbox.js";

interface PoolRow {
  key: string;
  ready: number;
  starting: number;
  hits: number;
  misses: number;
}

let server: TestServer | undefined;
afterAll(async () => {
  await server?.stop();
});

describe("the warm pool in warden serve", () => {
  it("prewarms python, serves a REST run from it, reports it, and ends it on stop", async () => {
    server = await startServer({ env: { WARDEN_POOL: "true" } });
    const pool = async (): Promise<PoolRow[]> =>
      ((await (await server!.request("GET", "/api/sandbox/metrics")).json()) as { pool: PoolRow[] })
        .pool;
    await eventually(async () =>
      (await pool()).some((p) => p.key.startsWith("python|") && p.ready > 0),
    );

    const res = await server.request("POST", "/v1/executions", {
      body: { language: "python", code: "import sys; print(sys.argv[0], __name__)" },
    });
    const result = (await res.json()) as {
      status: string;
      stdout: string;
      metrics: { warmStart: boolean };
    };
    expect(result).toMatchObject({ status: "completed", stdout: "main.py __main__\n" });
    expect(result.metrics.warmStart).toBe(true);
    const python = (await pool()).find((p) => p.key.startsWith("python|"))!;
    expect(python.hits).toBe(1);
    const scrape = await (await server.request("GET", "/metrics")).text();
    expect(scrape).toMatch(/warden_pool_hits_total\{language="python"\} 1/);

    // Stopping the service destroys the started boxes: no helper of this server is left.
    const owner = `b${server.process.pid}-`;
    expect(await server.stop()).toBe(0);
    expect(helpersOf(owner)).toEqual([]);
  });
});
