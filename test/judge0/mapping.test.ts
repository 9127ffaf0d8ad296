/**
 * The Judge0 adapter's pure parts: reading a submission (Judge0's validation
 * messages, units, shell-like argument splitting, base64), the zip reader,
 * `fields`, and how a Warden result reads as a Judge0 status — including a
 * judged run (number_of_runs > 1), which can run only once the judging
 * engine is merged: its mapping is checked here on a result of that shape.
 */
import { describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.js";
import { blankResult, type ExecutionResult } from "../../src/contract/result.js";
import type { TestCaseResult } from "../../src/contract/judging.js";
import { parseSubmission, splitArgs, decodeBase64 } from "../../src/http/judge0/request.js";
import { parseFields, DEFAULT_FIELDS, SUBMISSION_FIELDS } from "../../src/http/judge0/render.js";
import { judge0Outcome, judge0Strip } from "../../src/http/judge0/statuses.js";
import { judge0Callback } from "../../src/http/judge0/callback.js";
import { readZip } from "../../src/http/judge0/zip.js";
import type { InstalledLanguage } from "../../src/http/judge0/languages.js";
import { writeZip } from "./zip-writer.js";

const config = ConfigSchema.parse({});
const python: InstalledLanguage = {
  id: 71,
  name: "Python (3.11.2)",
  language: "python",
  primary: true,
  archived: false,
  sourceFile: "main.py",
  compileCmd: null,
  runCmd: "python -u main.py",
};
const ctx = { config, base64: false, installed: new Map([[71, python]]) };
const judging = { expectedOutput: null, cpuTimeLimit: 0, redirectStderrToStdout: false };

describe("splitArgs", () => {
  it("splits like a shell, expands nothing", () => {
    expect(splitArgs(`a  "b c" 'd $X' e\\ f "g\\"h" \`id\` *`)).toEqual([
      "a",
      "b c",
      "d $X",
      "e f",
      'g"h',
      "`id`",
      "*",
    ]);
    expect(splitArgs(`"" ''`)).toEqual(["", ""]);
    expect(() => splitArgs(`"open`)).toThrow(/unterminated/);
  });
});

describe("parseSubmission", () => {
  it("refuses callback_url from a request without an API key, before anything runs", async () => {
    const webhooks = {
      checkUrl: async (url: string) => url,
      register: async () => undefined,
      nudge: () => undefined,
      close: async () => undefined,
    };
    const body = { source_code: "print(1)", language_id: 71, callback_url: "https://h.example/" };
    const keyless = await parseSubmission(body, { ...ctx, webhooks });
    expect(keyless).toEqual({
      ok: false,
      errors: { callback_url: ["needs a request made with an API key"] },
    });
    const keyed = await parseSubmission(body, { ...ctx, webhooks, keyId: "key_a" });
    expect(keyed.ok).toBe(true);
  });

  it("maps Judge0's units onto Warden's limits", async () => {
    const r = await parseSubmission(
      {
        source_code: "print(1)",
        language_id: "71",
        cpu_time_limit: "2",
        cpu_extra_time: 0.5,
        wall_time_limit: 3,
        memory_limit: 65536,
        max_processes_and_or_threads: 30,
        command_line_arguments: "x 'y z'",
        stdin: "in",
      },
      ctx,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.input).toMatchObject({
      language: "python",
      code: "print(1)",
      stdin: "in",
      args: ["x", "y z"],
      timeout: 3,
      limits: { memoryMb: 64, pids: 30, cpuTimeMs: 2500 },
    });
    expect(r.value.input.tests).toBeUndefined();
  });

  it("runs number_of_runs > 1 as N judged copies that stop at the first failure", async () => {
    const r = await parseSubmission(
      {
        source_code: "print(1)",
        language_id: 71,
        number_of_runs: 3,
        stdin: "s",
        expected_output: "1",
      },
      ctx,
    );
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.value.input.tests).toEqual(
      Array.from({ length: 3 }, () => ({ stdin: "s", args: [], expectedOutput: "1" })),
    );
    expect(r.value.input.stopOnFirstFailure).toBe(true);
    expect(r.value.input.compare).toEqual({ mode: "trailing_whitespace" });
  });

  it("answers Judge0's validation messages per field", async () => {
    const r = await parseSubmission(
      { language_id: 150000, number_of_runs: 0, memory_limit: "lots", stack_limit: 999999 },
      ctx,
    );
    expect(r).toEqual({
      ok: false,
      errors: {
        source_code: ["can't be blank"],
        language_id: ["language with id 150000 doesn't exist"],
        number_of_runs: ["must be greater than 0"],
        memory_limit: ["is not a number"],
        stack_limit: ["must be less than or equal to 128000"],
      },
    });
  });

  it("decodes base64 fields strictly (Ruby's line breaks allowed)", async () => {
    expect(decodeBase64("aGVsbG8sIEp1ZGdlMAo=\n")?.toString()).toBe("hello, Judge0\n");
    expect(decodeBase64("not base64!")).toBeNull();
    const r = await parseSubmission(
      { source_code: "%%%", language_id: 71 },
      { ...ctx, base64: true },
    );
    expect(r).toMatchObject({
      ok: false,
      errors: { source_code: [expect.stringMatching(/base64/)] },
    });
  });

  it("unpacks additional_files beside the source, which wins over a same-named entry", async () => {
    const zip = writeZip([
      { name: "lib/helper.py", content: "X = 1\n", deflate: true },
      { name: "main.py", content: "print('from the zip')" },
      { name: "lib/", content: "" },
    ]);
    const r = await parseSubmission(
      { source_code: "print(2)", language_id: 71, additional_files: zip.toString("base64") },
      ctx,
    );
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.value.input.files).toEqual([
      { path: "main.py", content: "print(2)", encoding: "utf8" },
      {
        path: "lib/helper.py",
        content: Buffer.from("X = 1\n").toString("base64"),
        encoding: "base64",
      },
    ]);
    expect(r.value.input.entrypoint).toBe("main.py");
  });
});

describe("fields", () => {
  it("defaults to Judge0's eight, * is all, unknown names are refused", () => {
    expect(parseFields(undefined)).toBe(DEFAULT_FIELDS);
    expect(parseFields("*")).toBe(SUBMISSION_FIELDS);
    expect(parseFields("stdout,status_id")).toEqual(["stdout", "status_id"]);
    expect(() => parseFields("stdout,__proto__,constructor")).toThrow(
      "invalid fields: [__proto__, constructor]",
    );
  });
});

const result = (over: Partial<ExecutionResult>): ExecutionResult => ({
  ...blankResult("exe_1", "completed"),
  success: true,
  exitCode: 0,
  metrics: {
    ...blankResult("x").metrics,
    cpuTimeMs: 12,
    executionTimeMs: 30,
    peakMemoryBytes: 3 * 1024 * 1024,
  },
  ...over,
});

describe("judge0Outcome", () => {
  it("reads each Warden ending as Judge0's status", () => {
    const id = (status: ExecutionResult["status"], over: Partial<ExecutionResult> = {}) =>
      judge0Outcome(status, result({ status, ...over }), judging).status.id;
    expect(judge0Outcome("queued", null, judging).status.id).toBe(1);
    expect(judge0Outcome("running", null, judging).status.id).toBe(2);
    expect(id("completed")).toBe(3);
    expect(id("timeout")).toBe(5);
    expect(id("failed", { exitCode: 1 })).toBe(11);
    expect(id("failed", { exitCode: null, signal: "SIGSEGV" })).toBe(7);
    expect(id("failed", { exitCode: null, signal: "SIGXFSZ" })).toBe(8);
    expect(id("failed", { exitCode: null, signal: "SIGFPE" })).toBe(9);
    expect(id("failed", { exitCode: null, signal: "SIGABRT" })).toBe(10);
    expect(id("failed", { exitCode: null, signal: "SIGUSR1" })).toBe(12);
    expect(id("memory_limit")).toBe(12);
    expect(id("output_limit")).toBe(8);
    expect(id("error", { exitCode: null })).toBe(13);
    const compileFailed = {
      status: "failed" as const,
      exitCode: 1,
      signal: null,
      stdout: "",
      stderr: "main.c:1: error",
      truncated: { stdout: false, stderr: false },
    };
    expect(id("failed", { compile: compileFailed })).toBe(6);
    const o = judge0Outcome("completed", result({ stdout: "4\n" }), judging);
    expect(o).toMatchObject({ time: "0.012", wall_time: "0.030", memory: 3072, exit_code: 0 });
  });

  it("compares with expected_output by Judge0's rule, and honours cpu_time_limit", () => {
    expect(judge0Strip("a  \nb\t\n\n")).toBe("a\nb");
    const r = result({ stdout: "a  \nb\n\n" });
    expect(judge0Outcome("completed", r, { ...judging, expectedOutput: "a\nb" }).status.id).toBe(3);
    expect(judge0Outcome("completed", r, { ...judging, expectedOutput: " a\nb" }).status.id).toBe(
      4,
    );
    expect(judge0Outcome("completed", r, { ...judging, cpuTimeLimit: 0.01 }).status.id).toBe(5);
  });

  it("reports a judged run (number_of_runs > 1) by its last run, times averaged", () => {
    const c = (over: Partial<TestCaseResult>): TestCaseResult => ({
      index: 0,
      name: "1",
      verdict: "accepted",
      status: "completed",
      exitCode: 0,
      signal: null,
      timeMs: 10,
      cpuTimeMs: 4,
      peakMemoryBytes: 1024 * 1024,
      stdout: "ok\n",
      stderr: "",
      truncated: { stdout: false, stderr: false },
      diff: null,
      message: null,
      points: 1,
      ...over,
    });
    const tests = (cases: TestCaseResult[]) => ({
      verdict: cases.find((x) => x.verdict !== "accepted")?.verdict ?? ("accepted" as const),
      total: cases.length,
      passed: 0,
      failed: 0,
      skipped: 0,
      score: 0,
      maxScore: 0,
      cases,
    });
    const all = judge0Outcome(
      "completed",
      result({ tests: tests([c({}), c({ cpuTimeMs: 8, peakMemoryBytes: 3 * 1024 * 1024 })]) }),
      judging,
    );
    expect(all).toMatchObject({ status: { id: 3 }, time: "0.006", memory: 2048, stdout: "ok\n" });
    const wrong = judge0Outcome(
      "failed",
      result({
        status: "failed",
        tests: tests([
          c({}),
          c({ verdict: "wrong_answer", stdout: "no\n" }),
          c({ verdict: "skipped", status: null }),
        ]),
      }),
      judging,
    );
    expect(wrong).toMatchObject({ status: { id: 4 }, stdout: "no\n", time: "0.004" });
  });

  it("renders the callback as Judge0 PUTs it: default fields, base64", () => {
    const body = judge0Callback({
      id: "exe_1",
      userId: "u",
      keyId: null,
      source: "judge0",
      language: "python",
      status: "completed",
      codeSha256: "",
      codeBytes: 1,
      limits: {} as never,
      result: result({ stdout: "hi\n" }),
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
    });
    expect(body.method).toBe("PUT");
    const json = JSON.parse(body.body) as Record<string, unknown>;
    expect(Object.keys(json).sort()).toEqual([...DEFAULT_FIELDS].sort());
    expect(json).toMatchObject({
      token: "exe_1",
      stdout: Buffer.from("hi\n").toString("base64"),
      status: { id: 3 },
    });
  });
});

describe("readZip", () => {
  it("reads stored and deflated entries and checks their CRC", () => {
    const zip = writeZip([
      { name: "a.txt", content: "A" },
      { name: "d/b.txt", content: "B".repeat(1000), deflate: true },
    ]);
    expect(readZip(zip, { maxEntries: 10, maxTotalBytes: 10_000 }).map((e) => e.path)).toEqual([
      "a.txt",
      "d/b.txt",
    ]);
    const corrupt = Buffer.from(zip);
    corrupt[30 + 5] = "Z".charCodeAt(0); // a.txt's content byte
    expect(() => readZip(corrupt, { maxEntries: 10, maxTotalBytes: 10_000 })).toThrow(/CRC/);
  });
});
