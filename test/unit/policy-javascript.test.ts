/** JavaScript rules (acorn, in process) and the policy decision. */
import { describe, expect, it } from "vitest";
import { analyseJavaScript } from "../../src/policy/javascript.js";
import { isBlocked, sortFindings, type AnalysisReport } from "../../src/policy/findings.js";

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
