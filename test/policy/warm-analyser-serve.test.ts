/**
 * The warm analyser inside `warden serve`: started with the service when a
 * policy mode is on, counted in /metrics, and gone when the service stops.
 */
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";

/** Pids of live warm analysers (python running analyze.py --serve). */
function warmAnalysers(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv.some((a) => a.endsWith("analyze.py")) && argv.includes("--serve"))
        found.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

let server: TestServer | undefined;
afterAll(async () => {
  await server?.stop();
});

describe("warm analysers in warden serve", () => {
  it("refuses repeated code from the cache, counts it, and leaves no analyser after stop", async () => {
    server = await startServer({ config: { policy: { mode: "block", warmAnalysers: 1 } } });
    await expect.poll(() => warmAnalysers().length, { timeout: 30_000 }).toBeGreaterThan(0);
    // The process is up before it has said it is ready: wait until the service counts it
    // live, or the first analysis rightly runs cold (a request never waits for a warm one).
    await expect
      .poll(
        async () =>
          (await (await server!.request("GET", "/metrics")).text()).includes(
            "warden_warm_analysers 1",
          ),
        { timeout: 30_000 },
      )
      .toBe(true);
    const body = { language: "python", code: "import os\nos.system('id')\n" };
    for (let i = 0; i < 3; i++) {
      const res = await server.request("POST", "/v1/executions", { body });
      const result = (await res.json()) as { status: string; error: { code: string } };
      expect(result).toMatchObject({ status: "rejected", error: { code: "MALICIOUS_CODE" } });
    }
    const metrics = await (await server.request("GET", "/metrics")).text();
    expect(metrics).toMatch(/warden_analysis_cache_total\{result="hit"\} 2/);
    expect(metrics).toMatch(/warden_analysis_cache_total\{result="miss"\} 1/);
    expect(metrics).toMatch(/warden_analyser_runs_total\{path="warm"\} 1/);
    expect(metrics).toMatch(/warden_warm_analysers 1/);
    expect(await server.stop()).toBe(0);
    expect(warmAnalysers()).toEqual([]);
  });
});
