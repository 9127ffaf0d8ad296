/**
 * Python analysis in its sandbox: the rules, and hostile source that can only
 * cost the analyser's own sandbox (a bounded analysis error, never a crash).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { Analyzer } from "../../src/policy/analyzer.js";
import type { SourceUnit } from "../../src/policy/findings.js";
import { config, registry, testHost } from "../helpers/sandbox.js";

let analyzer: Analyzer;
beforeAll(async () => {
  analyzer = new Analyzer(config, await testHost(), registry);
});

const rules = async (source: string): Promise<string[]> =>
  (await analyzer.analyse("python", [{ cell: null, source }], { userId: "u" })).findings.map(
    (f) => f.ruleId,
  );

/** Findings of a notebook cell (IPython lines set aside) as `ruleId severity`. */
const cell = async (source: string, kind: SourceUnit["kind"] = "cell"): Promise<string[]> =>
  (await analyzer.analyse("python", [{ cell: 0, source, kind }], { userId: "u" })).findings.map(
    (f) => `${f.ruleId} ${f.severity}`,
  );

describe("python analysis (ast, in a sandbox)", () => {
  it("finds each dangerous pattern with its line and column", async () => {
    const source = [
      "import os, base64",
      "import subprocess as sp",
      "os.system('id')",
      "sp.run(['ls'])",
      "from os import execv",
      "execv('/bin/sh', ['sh'])",
      "eval(input())",
      "__import__('os')",
      "().__class__.__bases__[0].__subclasses__()",
      "import ctypes",
      "import pickle; pickle.loads(b'')",
      "import socket; socket.socket()",
      "import requests",
      "open('/etc/cron.d/job', 'w')",
      "open('/workspace/ok.txt', 'w')",
      "import pty; pty.spawn('/bin/sh')",
    ].join("\n");
    const report = await analyzer.analyse("python", [{ cell: 4, source }], { userId: "u" });
    const found = report.findings.map((f) => `${f.line}:${f.ruleId}`);
    for (const expected of [
      "2:process-import",
      "3:process-exec",
      "4:process-exec",
      "6:process-exec",
      "7:dynamic-exec",
      "8:dynamic-import",
      "9:introspection-escape",
      "10:native-code",
      "11:unsafe-deserialization",
      "12:raw-socket",
      "13:network",
      "14:file-write-outside-workspace",
      "16:process-exec",
    ])
      expect(found).toContain(expected);
    expect(found.filter((f) => f.startsWith("15:"))).toEqual([]);
    expect(report.findings.find((f) => f.line === 3)).toMatchObject({
      cell: 4,
      column: 1,
      severity: "high",
    });
    expect(report.complete).toBe(true);
  });

  it("finds exec of base64- and hex-decoded code, directly or through a variable", async () => {
    expect(await rules("import base64\nexec(base64.b64decode('cHJpbnQoMSk='))")).toContain(
      "obfuscated-exec",
    );
    expect(
      await rules(
        "import codecs\npayload = bytes.fromhex('7072696e74283129').decode()\neval(payload)",
      ),
    ).toContain("obfuscated-exec");
    expect(
      await rules("from base64 import b64decode as d\nexec(compile(d('eA=='), 'x', 'exec'))"),
    ).toContain("obfuscated-exec");
  });

  it("reports IPython shell lines and magics in notebook cells, and still analyses the rest", async () => {
    expect(await cell("!rm -rf /workspace\n%pip install x\nimport os\nos.system('x')")).toEqual([
      "ipython-shell medium",
      "ipython-magic low",
      "process-exec high",
    ]);
    expect(await cell("%%bash\nls")).toEqual(["ipython-shell medium"]);
    // `% name` (a space after %) is a magic for the runner too (line-scanner.ts).
    expect(await cell("% pip install x\nx = 1")).toEqual(["ipython-magic low"]);
  });

  it("reads a % or ! line inside brackets, strings or continuations as the Python it is", async () => {
    // Python runs these as a modulo: blanking the line would hide os.system.
    expect(await cell('import os\nx = (1\n%os.system("echo pwned"))')).toContain(
      "process-exec high",
    );
    expect(await cell('import os\nx = 1 \\\n%os.system("echo pwned")')).toContain(
      "process-exec high",
    );
    expect(await cell('s = """\n!ls\n"""\nprint(s)')).toEqual([]);
    expect(await cell("x = (1\n!= 2)")).toEqual([]);
    // Outside notebooks there is no IPython: the same line is analysed as code.
    expect(await cell('import os\nx = (1\n%os.system("id"))', "program")).toContain(
      "process-exec high",
    );
  });

  it("fails closed on a syntax error that only setting IPython lines aside produced, or in the program", async () => {
    expect(await cell("x = (1,\n2)\n!ls\ndef f(:\n  pass")).toContain("syntax-error high");
    expect(await cell("def f(:\n  pass")).toEqual(["syntax-error low"]);
    expect(await cell("def f(:\n  pass", "program")).toEqual(["syntax-error high"]);
    expect(await cell("a,b\n1,2", "file")).toEqual([]);
    expect(await cell("not python at all", "file")).toEqual(["syntax-error low"]);
  });

  it("analyses every cell however many low findings come first", async () => {
    const report = await analyzer.analyse(
      "python",
      [
        { cell: 0, source: "import pickle\n".repeat(600), kind: "cell" },
        { cell: 1, source: "import os\nos.system('id')", kind: "cell" },
      ],
      { userId: "u" },
    );
    expect(report.findings).toContainEqual(
      expect.objectContaining({ ruleId: "process-exec", severity: "high", cell: 1 }),
    );
  });

  it("resolves modules imported by a call to their functions", async () => {
    expect(await rules("__import__('os').system('id')")).toContain("process-exec");
    expect(await rules("import importlib\nimportlib.import_module('os').system('id')")).toContain(
      "process-exec",
    );
    expect(await rules("__import__('os.path').system('id')")).toContain("process-exec");
    expect(new Set(await rules("__import__('subprocess').run(['id'])"))).toEqual(
      new Set(["process-import", "dynamic-import", "process-exec"]),
    );
  });

  it("keeps clean code clean and reports a syntax error as low", async () => {
    expect(
      await rules("words = 'a b a'.split()\nprint({w: words.count(w) for w in words})"),
    ).toEqual([]);
    expect(await rules("def f(:\n  pass")).toEqual(["syntax-error"]);
  });

  it("bounds hostile input: deep nesting, a parser-exhausting expression, a huge literal", async () => {
    const nested = await analyzer.analyse("python", [{ cell: null, source: "(".repeat(100_000) }], {
      userId: "u",
    });
    expect(nested.findings.map((f) => f.ruleId)).toEqual(["syntax-error"]);

    const started = Date.now();
    const unary = await analyzer.analyse(
      "python",
      [{ cell: null, source: `x = ${"-".repeat(1_000_000)}1` }],
      { userId: "u" },
    );
    expect(unary.complete).toBe(false);
    expect(unary.findings[0]).toMatchObject({ ruleId: "analysis-failed", severity: "high" });

    // ~4 MB of list literal: millions of AST nodes against a 64 MiB analyser.
    const small = new Analyzer(
      { ...config, policy: { ...config.policy, analysisMemoryMb: 64 } },
      await testHost(),
      registry,
    );
    const huge = await small.analyse(
      "python",
      [{ cell: null, source: `x = [${"1,".repeat(2_000_000)}]` }],
      { userId: "u" },
    );
    expect(huge.complete).toBe(false);
    expect(huge.findings[0]?.message).toMatch(/memory_limit|too large|analyse/);
    // Bounded by the analysis sandboxes' own limits (10 s each), not the host.
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
