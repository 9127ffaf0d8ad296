/**
 * The warm analyser and the analysis cache on real sandboxes: a repeat is
 * answered without any analyser, a rule change misses, the warm path gives the
 * cold path's findings, and closing leaves no process, cgroup or mount.
 */
import { cpSync, mkdtempSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Analyzer } from "../../src/policy/analyzer.js";
import { AnalysisCache } from "../../src/policy/analysis-cache.js";
import { defaultNativeDir } from "../../src/sandbox/host.js";
import { config, expectNothingLeft, registry, testHost } from "../helpers/sandbox.js";
import { counting } from "./counting.js";

const CODE = "import os\nos.system('id')\n";
const units = (source: string) => [{ cell: null, source, kind: "program" as const }];
const closing: Analyzer[] = [];
afterAll(async () => {
  await Promise.all(closing.map((a) => a.close()));
});

describe("warm analyser and analysis cache", () => {
  it("answers warm like cold, then from the cache without any analyser", async () => {
    const host = await testHost();
    const metrics = counting();
    const cold = new Analyzer(config, host, registry, { metrics: counting() });
    const warm = new Analyzer(config, host, registry, { warm: true, metrics });
    closing.push(warm);
    warm.prewarm();
    const expected = (await cold.analyse("python", units(CODE), { userId: "u" })).findings;
    expect(expected.map((f) => f.ruleId)).toEqual(["process-exec"]);
    // Until a warm analyser is up, requests run cold; then they go warm.
    await expect.poll(() => warm.warmSandboxes().length, { timeout: 30_000 }).toBe(2);
    const first = await warm.analyse("python", units(CODE), { userId: "u" });
    expect(first.findings).toEqual(expected);
    expect(metrics.counts).toMatchObject({ run_warm: 1, cache_miss: 1 });
    for (let i = 0; i < 5; i++) {
      const again = await warm.analyse("python", units(CODE), { userId: "u" });
      expect(again.findings).toEqual(expected);
    }
    // Five hits, and still one analyser request: the cache skipped the analyser.
    expect(metrics.counts).toMatchObject({ run_warm: 1, cache_hit: 5, cache_miss: 1 });
    expect(metrics.counts.run_cold).toBeUndefined();
    // Another user's identical code is not a hit (no cross-tenant timing oracle).
    await warm.analyse("python", units(CODE), { userId: "other" });
    expect(metrics.counts).toMatchObject({ cache_miss: 2 });
  });

  it("misses when the rules change (a different analyze.py)", async () => {
    const host = await testHost();
    const dir = mkdtempSync(join(tmpdir(), "warden-rules-"));
    cpSync(join(defaultNativeDir(), "analyze.py"), join(dir, "analyze.py"));
    appendFileSync(join(dir, "analyze.py"), "\n# rules v2\n");
    const cache = new AnalysisCache({ maxEntries: 100, maxBytes: 1 << 20 });
    const m1 = counting();
    const m2 = counting();
    const v1 = new Analyzer(config, host, registry, { cache, metrics: m1 });
    const v2 = new Analyzer(
      { ...config, sandbox: { ...config.sandbox, nativeDir: dir } },
      host,
      registry,
      { cache, metrics: m2 },
    );
    await v1.analyse("python", units(CODE), { userId: "u" });
    await v1.analyse("python", units(CODE), { userId: "u" });
    await v2.analyse("python", units(CODE), { userId: "u" });
    expect(m1.counts).toMatchObject({ cache_miss: 1, cache_hit: 1, run_cold: 1 });
    expect(m2.counts).toMatchObject({ cache_miss: 1, run_cold: 1 });
    expect(cache.size).toBe(2);
  });

  it("leaves nothing behind once closed", async () => {
    const host = await testHost();
    const analyzer = new Analyzer(config, host, registry, { warm: true });
    analyzer.prewarm();
    await expect.poll(() => analyzer.warmSandboxes().length, { timeout: 30_000 }).toBe(2);
    const boxes = analyzer.warmSandboxes();
    await analyzer.analyse("python", units("print(1)"), { userId: "u" });
    await analyzer.close();
    await analyzer.close();
    expect(analyzer.warmSandboxes()).toEqual([]);
    for (const box of boxes) await expectNothingLeft(host, box);
    // Closed: analyses still work, cold.
    const after = await analyzer.analyse("python", units("eval(1)"), { userId: "u" });
    expect(after.findings.map((f) => f.ruleId)).toEqual(["dynamic-exec"]);
  });
});
