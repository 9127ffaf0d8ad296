/**
 * A warm analyser taken over: analyze.py --serve replaced by a hostile program
 * (the one-shot mode stays real, so the cold path still answers). Each attack
 * must break only that analyser: the request gets the cold path's findings or
 * a clear fail-closed finding, the pool counts a restart with the reason,
 * Warden's memory stays bounded, and nothing is left once closed.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Analyzer } from "../../src/policy/analyzer.js";
import { defaultNativeDir } from "../../src/sandbox/host.js";
import { config, expectNothingLeft, registry, testHost } from "../helpers/sandbox.js";
import { counting } from "./counting.js";

const REAL = readFileSync(join(defaultNativeDir(), "analyze.py"), "utf8");
const SERVE = 'if sys.argv[1:] == ["--serve"]:\n    serve()';

/** analyze.py whose serve mode is `body` (after reading one request into `request`). */
function hostile(body: string, ready = 'answer({"ready": True})'): string {
  expect(REAL).toContain(SERVE);
  const program = `
def hostile():
    import os, time
    ${ready}
    stdin = sys.stdin.buffer
    while True:
        header = stdin.readline(32)
        if not header:
            return
        request = json.loads(stdin.read(int(header)))
${body
  .split("\n")
  .map((l) => `        ${l}`)
  .join("\n")}

`;
  return REAL.replace(SERVE, `${program}if sys.argv[1:] == ["--serve"]:\n    hostile()`);
}

const CODE = "import os\nos.system('id')\n";
const units = [{ cell: null, source: CODE, kind: "program" as const }];
const seen: { id: string; uid: number }[] = [];
const analyzers: Analyzer[] = [];

afterAll(async () => {
  await Promise.all(analyzers.map((a) => a.close()));
  const host = await testHost();
  for (const box of seen) await expectNothingLeft(host, box);
});

async function attack(body: string, o: { timeoutS?: number; waitWarm?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "warden-hostile-analyser-"));
  writeFileSync(join(dir, "analyze.py"), body.startsWith('"""') ? body : hostile(body));
  const metrics = counting();
  const analyzer = new Analyzer(
    {
      ...config,
      sandbox: { ...config.sandbox, nativeDir: dir },
      policy: { ...config.policy, warmAnalysers: 1, analysisTimeout: o.timeoutS ?? 10 },
    },
    await testHost(),
    registry,
    { warm: true, metrics },
  );
  analyzers.push(analyzer);
  analyzer.prewarm();
  if (o.waitWarm !== false) {
    await expect.poll(() => analyzer.warmSandboxes().length, { timeout: 30_000 }).toBe(1);
    seen.push(...analyzer.warmSandboxes());
  }
  return { analyzer, metrics };
}

/** The real findings, from the cold path. */
const EXPECTED = ["process-exec"];
const rules = (r: { findings: { ruleId: string }[] }): string[] => r.findings.map((f) => f.ruleId);

describe("a hostile warm analyser", () => {
  it("garbage instead of an answer: restarted, the request runs cold", async () => {
    const { analyzer, metrics } = await attack('sys.stdout.write("not json at all\\n")');
    expect(rules(await analyzer.analyse("python", units, { userId: "u" }))).toEqual(EXPECTED);
    expect(metrics.counts).toMatchObject({ restart_garbled: 1, run_warm: 1, run_cold: 1 });
  });

  it("a finding for a cell it was not asked about: refused as garbled", async () => {
    const forged = JSON.stringify({
      findings: [{ ruleId: "x", severity: "low", message: "m", line: 1, column: 1, cell: 99 }],
      errors: [],
    });
    const { analyzer, metrics } = await attack(`answer(${forged})`);
    expect(rules(await analyzer.analyse("python", units, { userId: "u" }))).toEqual(EXPECTED);
    expect(metrics.counts).toMatchObject({ restart_garbled: 1 });
  });

  it("an endless line: stopped at the answer cap, Warden's memory stays bounded", async () => {
    const { analyzer, metrics } = await attack(
      'while True:\n    sys.stdout.write("x" * 65536)\n    sys.stdout.flush()',
    );
    const before = process.memoryUsage().rss;
    expect(rules(await analyzer.analyse("python", units, { userId: "u" }))).toEqual(EXPECTED);
    expect(process.memoryUsage().rss - before).toBeLessThan(128 * 1024 * 1024);
    expect(metrics.counts).toMatchObject({ restart_oversized: 1 });
  });

  it("a hang: the request fails closed at the analysis timeout, the next one is answered", async () => {
    const { analyzer, metrics } = await attack("time.sleep(3600)", { timeoutS: 2 });
    const hung = await analyzer.analyse("python", units, { userId: "u" });
    expect(hung.complete).toBe(false);
    expect(hung.findings[0]).toMatchObject({ ruleId: "analysis-failed", severity: "high" });
    expect(hung.findings[0]!.message).toMatch(/timeout/);
    expect(metrics.counts).toMatchObject({ restart_timeout: 1 });
    expect(metrics.counts.run_cold).toBeUndefined();
    // A timeout is never cached: the same code is analysed again (cold: the new one hangs too).
    const other = await analyzer.analyse(
      "python",
      [{ cell: null, source: "eval(1)", kind: "program" }],
      { userId: "v" },
    );
    expect(other.findings.length).toBeGreaterThan(0);
  });

  it("a crash mid-request: restarted, the request runs cold", async () => {
    const { analyzer, metrics } = await attack("os._exit(3)");
    expect(rules(await analyzer.analyse("python", units, { userId: "u" }))).toEqual(EXPECTED);
    expect(metrics.counts).toMatchObject({ restart_crash: 1, run_cold: 1 });
  });

  it("an answer nobody asked for: the analyser is given up after the request it answered", async () => {
    const { analyzer, metrics } = await attack(
      'answer({"findings": [], "errors": []})\nanswer({"findings": [], "errors": []})',
    );
    const first = await analyzer.analyse("python", units, { userId: "u" });
    expect(first.findings).toEqual([]); // a forged clean verdict is indistinguishable: analysis is policy, not the wall
    await expect.poll(() => metrics.counts.restart_unsolicited ?? 0).toBe(1);
  });

  it("no ready line: never used, analyses run cold", async () => {
    const { analyzer: a2, metrics: m2 } = await attack(hostile("pass", 'print("hello")'), {
      waitWarm: false,
    });
    expect(rules(await a2.analyse("python", units, { userId: "u" }))).toEqual(EXPECTED);
    expect(m2.counts).toMatchObject({ run_cold: 1 });
    expect(m2.counts.run_warm).toBeUndefined();
    expect(a2.warmSandboxes()).toEqual([]);
  });
});
