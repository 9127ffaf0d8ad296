/** JavaScript rules (acorn, in process) and the policy decision. */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { Analyzer } from "../../src/policy/analyzer.js";
import { analyseJavaScript } from "../../src/policy/javascript.js";
import type { AnalysisReport } from "../../src/contract/policy.js";
import { isBlocked, sortFindings } from "../../src/policy/findings.js";
import { BUILTIN_RUNTIMES } from "../../src/runtimes/builtin.js";
import { RuntimeRegistry } from "../../src/runtimes/registry.js";
import type { SandboxHost } from "../../src/sandbox/host.js";

const rules = (source: string): string[] =>
  analyseJavaScript([{ cell: null, source }]).findings.map((f) => f.ruleId);

describe("javascript analysis", () => {
  it("finds processes, eval, obfuscated eval, raw network, native bindings and writes", () => {
    expect(rules("const cp = require('child_process'); cp.execSync('id')")).toEqual([
      "process-import",
      "process-exec",
    ]);
    expect(rules("import { spawn } from 'node:child_process'; spawn('sh')")).toContain(
      "process-exec",
    );
    expect(rules("eval('1+1')")).toEqual(["dynamic-exec"]);
    expect(rules("new Function(Buffer.from('cmV0dXJuIDE=', 'base64').toString())()")).toEqual([
      "obfuscated-exec",
    ]);
    expect(rules("eval(atob('MQ=='))")).toEqual(["obfuscated-exec"]);
    expect(rules("const net = require('net'); net.connect(80)")).toEqual(["network"]);
    expect(rules("process.binding('spawn_sync')")).toContain("native-code");
    expect(rules("({}).constructor.constructor('return process')()")).toContain(
      "introspection-escape",
    );
    expect(rules("const fs = require('fs'); fs.writeFileSync('/etc/cron.d/x', 'y')")).toEqual([
      "file-write-outside-workspace",
    ]);
    expect(rules("const fs = require('fs'); fs.writeFileSync('/workspace/out.txt', 'y')")).toEqual(
      [],
    );
    expect(rules("const x = [1, 2, 3].map((n) => n * 2); console.log(x)")).toEqual([]);
  });

  it("gives line and column, and reports syntax errors without throwing", () => {
    const [f] = analyseJavaScript([{ cell: 2, source: "let a = 1;\n  eval(a)" }]).findings;
    expect(f).toMatchObject({ ruleId: "dynamic-exec", line: 2, column: 3, cell: 2 });
    expect(rules("function (")).toEqual(["syntax-error"]);
  });

  it("survives input nested deep enough to overflow a recursive parser", () => {
    const deep = `${"[".repeat(200_000)}${"]".repeat(200_000)}`;
    const report = analyseJavaScript([{ cell: null, source: deep }]);
    expect(report.findings.map((f) => f.ruleId)).toEqual(["analysis-failed"]);
    expect(report.complete).toBe(false);
  });
});

describe("javascript analysis of hostile input", () => {
  it('resolves require("m").f to m.f, so the high rules fire', () => {
    expect(rules("require('child_process').execSync('id')")).toContain("process-exec");
    expect(rules("require('node:child_process').spawn('sh')")).toContain("process-exec");
    expect(rules("require('fs').writeFileSync('/etc/cron.d/x', 'y')")).toEqual([
      "file-write-outside-workspace",
    ]);
  });

  // No clock here: at these sizes a quadratic walk (the bug this guards) runs for
  // many minutes and hits the test timeout, while a linear one takes well under a second.
  it("reads long member chains in linear time, and refuses to name very long ones", () => {
    const chains = `a${".b".repeat(20_000)};\n`.repeat(20);
    expect(rules(chains)).toEqual([]);
    const deep = `process${".x".repeat(100_000)}.binding('spawn_sync')`;
    expect(() => rules(deep)).not.toThrow();
  });

  it("flags units past the size caps as not analysed, instead of parsing them", () => {
    const big = analyseJavaScript([{ cell: 0, source: `// ${"x".repeat(2000)}` }], {
      maxUnitBytes: 1024,
    });
    expect(big.findings).toMatchObject([{ ruleId: "analysis-failed", severity: "high", cell: 0 }]);
    expect(big.complete).toBe(false);
    const units = [0, 1, 2].map((cell) => ({ cell, source: `// ${"x".repeat(600)}` }));
    const total = analyseJavaScript(units, { maxUnitBytes: 1024, maxTotalBytes: 1300 });
    expect(total.findings.map((f) => `${f.cell} ${f.ruleId}`)).toEqual(["2 analysis-failed"]);
  });

  it("keeps high findings when many low ones pass the cap", () => {
    const flood = "import('x' + y);\n".repeat(600);
    for (const source of [`${flood}eval(z)`, `eval(z);\n${flood}`]) {
      const { findings } = analyseJavaScript([{ cell: null, source }]);
      expect(findings.some((f) => f.ruleId === "dynamic-exec")).toBe(true);
    }
    const cells = analyseJavaScript([
      { cell: 0, source: flood },
      { cell: 1, source: "eval(z)" },
    ]);
    expect(cells.findings.some((f) => f.ruleId === "dynamic-exec")).toBe(true);
  });
});

describe("analyzer", () => {
  const config = loadConfig({ env: {} });
  const snake = BUILTIN_RUNTIMES.find((r) => r.language === "python")!;
  const registry = new RuntimeRegistry(config.sandbox.searchPath, [
    { ...snake, aliases: [...(snake.aliases ?? []), "snake"] },
  ]);
  const host = {} as SandboxHost;

  it("resolves every alias the registry knows, built in or configured", () => {
    const analyzer = new Analyzer(config, host, registry);
    expect(analyzer.languageOf("nodejs")).toBe("javascript");
    expect(analyzer.languageOf("NODE")).toBe("javascript");
    expect(analyzer.languageOf("snake")).toBe("python");
    expect(analyzer.languageOf("bash")).toBeNull();
  });

  it("shares analysis sandboxes fairly: a per-user cap, named in SANDBOX_BUSY", async () => {
    const analyzer = new Analyzer(
      { ...config, policy: { ...config.policy, maxConcurrentAnalyses: 4 } },
      host,
      registry,
    );
    const releases: (() => void)[] = [];
    const started: string[] = [];
    // The sandboxed Python analysis, replaced by one the test finishes by hand.
    Object.assign(analyzer, {
      python: (units: { source: string }[]) => {
        started.push(units[0]!.source);
        return new Promise((resolve) =>
          releases.push(() => resolve({ findings: [], complete: true })),
        );
      },
    });
    const run = (userId: string): Promise<unknown> =>
      analyzer.analyse("python", [{ cell: null, source: userId }], { userId });
    const greedy = Array.from({ length: 12 }, () => run("greedy"));
    await expect(run("greedy")).rejects.toMatchObject({
      code: "SANDBOX_BUSY",
      message: expect.stringMatching(/2 running and 10 waiting analyses per user/),
    });
    const other = run("other");
    await new Promise((r) => setImmediate(r));
    // greedy holds its 2 slots; the other user starts at once despite 10 of greedy's waiting.
    expect(started).toEqual(["greedy", "greedy", "other"]);
    while (releases.length > 0) {
      releases.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all([...greedy, other]);
    expect(started.filter((u) => u === "greedy")).toHaveLength(12);
  });
});

describe("policy", () => {
  const report = (severity: "low" | "high"): AnalysisReport => ({
    language: "python",
    complete: true,
    durationMs: 1,
    findings: [{ ruleId: "x", severity, message: "", line: 1, column: 1, cell: null }],
  });
  it("blocks only in block mode and only on high severity", () => {
    expect(isBlocked("block", report("high"))).toBe(true);
    expect(isBlocked("block", report("low"))).toBe(false);
    expect(isBlocked("audit", report("high"))).toBe(false);
    expect(isBlocked("off", report("high"))).toBe(false);
  });
  it("orders findings by cell, line, column", () => {
    const f = (cell: number | null, line: number) => ({
      ruleId: "r",
      severity: "low" as const,
      message: "",
      line,
      column: 1,
      cell,
    });
    expect(
      sortFindings([f(2, 1), f(null, 5), f(1, 9), f(1, 2)]).map((x) => [x.cell, x.line]),
    ).toEqual([
      [null, 5],
      [1, 2],
      [1, 9],
      [2, 1],
    ]);
  });
});
