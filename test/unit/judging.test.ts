/** Judging's pure parts: comparisons, request bounds, suite archives, the job row. */
import { describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.js";
import { compareOutput } from "../../src/judging/compare.js";
import { resolveJudge } from "../../src/judging/request.js";
import { parseSuite } from "../../src/judging/suites.js";
import { runVerdict } from "../../src/judging/types.js";
import { fromJob, judgeFromJob, QueuedJobSchema, toJob } from "../../src/cluster/job.js";
import { withinMaxima } from "../../src/cluster/node.js";
import type { ExecutionRequest } from "../../src/executions/execution.js";
import { makeTar } from "../judging/tar.js";

const config = ConfigSchema.parse({ dataDir: "/tmp/x" });

describe("compareOutput", () => {
  it("exact, trailing whitespace (default), tokens", () => {
    expect(compareOutput("1 2\n", "1 2\n", { mode: "exact" })).toBeNull();
    expect(compareOutput("1 2 \n", "1 2\n", { mode: "exact" })).toMatch(/line 1/);
    expect(compareOutput("1 2  \n\n\n", "1 2", { mode: "trailing_whitespace" })).toBeNull();
    expect(compareOutput("1\n3\n", "1\n2\n", { mode: "trailing_whitespace" })).toBe(
      'line 2: expected "2", got "3"',
    );
    expect(compareOutput(" 1\n\t2  3", "1 2 3", { mode: "tokens" })).toBeNull();
    expect(compareOutput("1 2", "1 2 3", { mode: "tokens" })).toBe(
      'token 3: expected "3", got end of output',
    );
  });

  it("float: absolute or relative tolerance, words compared exactly", () => {
    const rule = { mode: "float" as const, absoluteTolerance: 1e-3 };
    expect(compareOutput("0.3334 x", "0.33333 x", rule)).toBeNull();
    expect(compareOutput("0.34", "0.33333", rule)).toMatch(/token 1/);
    expect(compareOutput("1000.5", "1000", { mode: "float", relativeTolerance: 1e-3 })).toBeNull();
    expect(compareOutput("nan", "1", rule)).toMatch(/token 1/);
    expect(compareOutput("0.3333334", "0.3333333", { mode: "float" })).toBeNull(); // default 1e-6
  });

  it("a diff is short whatever the outputs hold", () => {
    const diff = compareOutput("a".repeat(1e6), "b".repeat(1e6), { mode: "exact" })!;
    expect(diff.length).toBeLessThan(200);
  });

  it("maps run statuses to verdicts", () => {
    expect(runVerdict("timeout")).toBe("time_limit");
    expect(runVerdict("memory_limit")).toBe("memory_limit");
    expect(runVerdict("output_limit")).toBe("output_limit");
    expect(runVerdict("failed")).toBe("runtime_error");
    expect(runVerdict("disk_limit")).toBe("runtime_error");
    expect(runVerdict("completed")).toBeNull();
  });
});

describe("resolveJudge", () => {
  const refuse = (input: Parameters<typeof resolveJudge>[1]) => () =>
    resolveJudge(config, input, (l) => (l === "python" ? "python" : undefined));

  it("refuses bad requests naming the field", () => {
    const many = Array.from({ length: config.judging.maxTests + 1 }, () => ({}));
    expect(refuse({ tests: many })).toThrow(/^tests: at most 1000 cases \(judging.maxTests\)/);
    const big = "x".repeat(config.judging.maxCaseInputBytes + 1);
    expect(refuse({ tests: [{}, {}, {}, { stdin: big }] })).toThrow(
      /^tests\[3\].stdin: must be at most 1048576 bytes \(judging.maxCaseInputBytes\)/,
    );
    expect(refuse({ tests: [{}], compare: { mode: "checker" } })).toThrow(
      /^compare.checker: required when compare.mode is checker/,
    );
    expect(
      refuse({
        tests: [{}],
        compare: { mode: "checker", checker: { language: "cobol", code: "x" } },
      }),
    ).toThrow(/^compare.checker.language: "cobol" is not supported/);
    expect(refuse({ tests: [{ limits: { memoryMb: 999_999 } }] })).toThrow(
      /^tests\[0\].limits.memoryMb: 999999 exceeds the maximum/,
    );
    expect(refuse({ tests: [{ name: "a" }, { name: "a" }] })).toThrow(/tests\[1\].name/);
    expect(refuse({ tests: [{}], stdin: "x" })).toThrow(/^stdin:/);
    expect(refuse({ compare: { mode: "exact" } })).toThrow(/^compare: only with tests/);
  });

  it("resolves names, points and per-case limits", () => {
    const spec = resolveJudge(config, {
      tests: [{ stdin: "1" }, { name: "big", limits: { timeout: 2, memoryMb: 64 }, points: 5 }],
      timeout: 10,
    })!;
    expect(spec.cases[0]).toMatchObject({ name: "1", points: 1, limits: undefined });
    expect(spec.cases[1]!.limits).toMatchObject({ timeoutMs: 2000, memoryMb: 64 });
    expect(spec.compare.mode).toBe("trailing_whitespace");
  });
});

describe("parseSuite", () => {
  const bounds = config.judging;
  it("pairs NAME.in and NAME.out, sorted by name (2 before 10)", () => {
    const tar = makeTar([
      { name: "tests/", type: "5" },
      { name: "tests/10.in", content: "10" },
      { name: "tests/2.in", content: "2" },
      { name: "tests/2.out", content: "4" },
      { name: "README", content: "hi" },
    ]);
    expect(parseSuite(tar, bounds)).toEqual([
      { name: "2", stdin: "2", expectedOutput: "4" },
      { name: "10", stdin: "10", expectedOutput: undefined },
    ]);
  });

  it("refuses links, paths outside, a corrupt header, an orphan .out, trailing data", () => {
    const ok = { name: "1.in", content: "1" };
    expect(() =>
      parseSuite(makeTar([ok, { name: "2.in", type: "2", linkname: "/etc/shadow" }]), bounds),
    ).toThrow(/only regular files/);
    expect(() =>
      parseSuite(makeTar([ok, { name: "3.in", type: "1", linkname: "1.in" }]), bounds),
    ).toThrow(/only regular files/);
    expect(() => parseSuite(makeTar([{ name: "../1.in", content: "x" }]), bounds)).toThrow(
      /'\.\.'/,
    );
    expect(() => parseSuite(makeTar([{ name: "/abs.in", content: "x" }]), bounds)).toThrow(
      /absolute/,
    );
    expect(() => parseSuite(makeTar([ok, { name: "9.out", content: "x" }]), bounds)).toThrow(
      /no 9.in/,
    );
    const corrupt = makeTar([ok]);
    corrupt[10] = 65;
    expect(() => parseSuite(corrupt, bounds)).toThrow(/checksum/);
    expect(() => parseSuite(Buffer.concat([makeTar([ok]), Buffer.from("x")]), bounds)).toThrow();
    expect(() => parseSuite(makeTar([ok]).subarray(0, 512), bounds)).toThrow(/end/);
  });
});

describe("job row", () => {
  const limits = { ...config.defaults, timeoutMs: 5000, killGraceMs: 1000, openFiles: 64 };
  const request: ExecutionRequest = {
    language: "cpp",
    files: [{ path: "main.cpp", content: "int main(){}" }],
    limits: limits,
    network: null,
    retryOnFailure: true,
    userId: "u",
    source: "api",
    judge: {
      cases: [
        { name: "a", stdin: "1", expectedOutput: "1", points: 2 },
        {
          name: "b",
          points: 1,
          limits: { ...(limits as ExecutionRequest["limits"]), memoryMb: 64 },
        },
      ],
      compare: { mode: "float", absoluteTolerance: 0.01 },
      checker: { language: "python", code: "pass", limits: limits },
      stopOnFirstFailure: true,
    },
  };

  it("carries the test-case run through the row and back", () => {
    const row = QueuedJobSchema.parse(JSON.parse(JSON.stringify(toJob(request))));
    const judge = judgeFromJob(row.judge!, (l) => withinMaxima(config, l), 1000);
    const back = fromJob(
      row,
      { userId: "u", keyId: null },
      {
        limits: row.limits,
        environment: null,
        network: null,
        judge,
      },
    );
    expect(back.judge).toEqual(request.judge);
  });

  it("a planted row gets no larger sandbox and no more cases than the worker allows", () => {
    const row = QueuedJobSchema.parse(JSON.parse(JSON.stringify(toJob(request))));
    row.judge!.cases[1]!.limits!.memoryMb = 1_000_000;
    expect(() => judgeFromJob(row.judge!, (l) => withinMaxima(config, l), 1000)).toThrow(
      /memoryMb: 1000000 is over this worker's maxMemoryMB/,
    );
    expect(() => judgeFromJob(row.judge!, (l) => l, 1)).toThrow(/judging.maxTests/);
    const tooMany = {
      ...toJob(request),
      judge: { ...request.judge!, cases: Array(100_001).fill(request.judge!.cases[0]) },
    };
    expect(QueuedJobSchema.safeParse(tooMany).success).toBe(false);
  });
});
