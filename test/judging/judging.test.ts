/**
 * Test-case runs end to end through the library API (the scheduler, records
 * and audit trail of a real Warden with real sandboxes): compile once, a
 * verdict per case, comparisons, checkers, interpreted languages, stopping
 * early, compile errors.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.js";
import { openWarden, type EmbeddedWarden } from "../../src/index.js";

let warden: EmbeddedWarden;

beforeAll(async () => {
  warden = await openWarden({
    config: ConfigSchema.parse({
      dataDir: mkdtempSync(join(tmpdir(), "warden-judge-")),
      sandbox: { pool: { enabled: false } },
    }),
  });
});
afterAll(async () => {
  await warden?.shutdown(2000);
});

/** Sums two numbers; "slow" spins, "mem" eats memory, "write"/"read" probe the workspace. */
const SOLUTION = `#include <bits/stdc++.h>
int main() {
  std::string s; std::cin >> s;
  if (s == "slow") for (volatile long i = 0;; i++) {}
  if (s == "mem") { std::vector<char> v(512 << 20, 1); std::cout << int(v[4096]) << "\\n"; return 0; }
  if (s == "write") { std::ofstream("left-behind.txt") << "secret"; std::cout << "written\\n"; return 0; }
  if (s == "read") { std::cout << (std::ifstream("left-behind.txt").good() ? "present" : "absent") << "\\n"; return 0; }
  long a = std::stol(s), b; std::cin >> b; std::cout << a + b << "\\n";
}
`;

describe("a C++ solution with 20 cases", () => {
  it("compiles once and gives a verdict per case", async () => {
    const right = Array.from({ length: 14 }, (_, i) => ({
      name: `sum${i}`,
      stdin: `${i} ${i * 3}\n`,
      expectedOutput: `${i * 4}\n`,
    }));
    const tests = [
      ...right,
      { name: "wrong1", stdin: "2 2", expectedOutput: "5" },
      { name: "wrong2", stdin: "1 1", expectedOutput: "2\n3\n" },
      { name: "slow", stdin: "slow", limits: { timeout: 1 } },
      { name: "hungry", stdin: "mem", limits: { memoryMb: 64 } },
      { name: "write", stdin: "write", expectedOutput: "written" },
      { name: "read", stdin: "read", expectedOutput: "absent" },
    ];
    const seen: string[] = [];
    const execution = warden.start(
      { language: "cpp", code: SOLUTION, timeout: 10, tests },
      "judge-user",
    );
    execution.on("test", (c) => seen.push(`${c.name}:${c.verdict}`));
    const result = await execution.done;
    const t = result.tests!;
    const verdicts = Object.fromEntries(t.cases.map((c) => [c.name, c.verdict]));
    expect(verdicts).toMatchObject({
      sum0: "accepted",
      sum13: "accepted",
      wrong1: "wrong_answer",
      wrong2: "wrong_answer",
      slow: "time_limit",
      hungry: "memory_limit",
      write: "accepted",
      // A fresh sandbox per case: case "write" left nothing for case "read".
      read: "accepted",
    });
    expect(t).toMatchObject({ total: 20, passed: 16, failed: 4, skipped: 0, score: 16 });
    expect(t.verdict).toBe("wrong_answer");
    expect(result.status).toBe("failed");
    expect(result.success).toBe(false);
    expect(result.compile?.status).toBe("completed");
    const wrong = t.cases.find((c) => c.name === "wrong1")!;
    expect(wrong.diff).toBe('line 1: expected "5", got "4"');
    const ok = t.cases[0]!;
    expect(ok.timeMs).toBeGreaterThanOrEqual(0);
    expect(ok.peakMemoryBytes).toBeGreaterThan(0);
    expect(seen).toHaveLength(20);
    // One compile in the audit trail, whatever the number of cases.
    const events = (await warden.getLogs(result.id)).map((e) => e.event);
    expect(events.filter((e) => e === "compiled")).toHaveLength(1);
    const compiled = (await warden.getLogs(result.id)).find((e) => e.event === "compiled")!;
    expect(compiled.data).toMatchObject({ cases: 20 });
  });
});

describe("comparisons and checkers", () => {
  const THIRD = `#include <cstdio>
int main() { printf("%.9f\\n", 1.0 / 3); }
`;

  it("float tolerance passes where exact comparison fails", async () => {
    const tests = [{ expectedOutput: "0.33333" }];
    const float = await warden.execute({
      language: "cpp",
      code: THIRD,
      tests,
      compare: { mode: "float", absoluteTolerance: 1e-4 },
    });
    expect(float.tests!.verdict).toBe("accepted");
    expect(float.status).toBe("completed");
    const exact = await warden.execute({ language: "cpp", code: THIRD, tests });
    expect(exact.tests!.cases[0]!.verdict).toBe("wrong_answer");
  });

  it("a checker decides: accepts, says wrong with a message, or fails (error)", async () => {
    const checker = (body: string) => ({
      mode: "checker" as const,
      checker: {
        language: "python",
        code: `import sys\ninp = open("input.txt").read().split()\nout = open("actual.txt").read().split()\n${body}\n`,
      },
    });
    const solution = "a, b = map(int, input().split())\nprint(a + b, a * b)";
    // Any order of the two numbers is right: only a checker can say so.
    const accepting = checker(
      `ok = sorted(map(int, out)) == sorted([int(inp[0]) + int(inp[1]), int(inp[0]) * int(inp[1])])\nprint("ok" if ok else "bad")\nsys.exit(0 if ok else 1)`,
    );
    const r = await warden.execute({
      language: "python",
      code: solution,
      tests: [{ stdin: "2 5" }, { stdin: "3 3" }],
      compare: accepting,
    });
    expect(r.tests!.cases.map((c) => [c.verdict, c.message])).toEqual([
      ["accepted", "ok"],
      ["accepted", "ok"],
    ]);
    const saysWrong = await warden.execute({
      language: "python",
      code: solution,
      tests: [{ stdin: "2 5" }],
      compare: checker(`print("never right")\nsys.exit(1)`),
    });
    expect(saysWrong.tests!.cases[0]).toMatchObject({
      verdict: "wrong_answer",
      message: "never right",
    });
    const crashing = await warden.execute({
      language: "python",
      code: solution,
      tests: [{ stdin: "2 5" }],
      // Exit 1 is the contract's "wrong": a crash is a signal (or any other code).
      compare: checker(`import os\nos.abort()`),
    });
    expect(crashing.tests!.cases[0]!.verdict).toBe("error");
    expect(crashing.tests!.cases[0]!.message).toMatch(/^checker failed \(signal SIG(ABRT|IOT)\)/);
  });

  it("a compiled checker is compiled once too", async () => {
    const r = await warden.execute({
      language: "python",
      code: "print(input())",
      tests: [
        { stdin: "7", expectedOutput: "7" },
        { stdin: "8", expectedOutput: "8" },
      ],
      compare: {
        mode: "checker",
        checker: {
          language: "c",
          code: `#include <stdio.h>
#include <string.h>
int main(void) { char a[64] = {0}, e[64] = {0}; FILE *f = fopen("actual.txt", "r"); fscanf(f, "%63s", a);
  f = fopen("expected.txt", "r"); fscanf(f, "%63s", e); puts(strcmp(a, e) ? "differs" : "same"); return strcmp(a, e) ? 1 : 0; }`,
        },
      },
    });
    expect(r.tests!.cases.map((c) => c.verdict)).toEqual(["accepted", "accepted"]);
    expect(r.tests!.cases[0]!.message).toBe("same");
  });
});

describe("runs and their ends", () => {
  it("an interpreted language, stopOnFirstFailure skipping the rest, points", async () => {
    const r = await warden.execute({
      language: "python",
      code: "n = int(input())\nprint(n * 2)",
      tests: [
        { stdin: "1", expectedOutput: "2", points: 10 },
        { stdin: "2", expectedOutput: "5" },
        { stdin: "3", expectedOutput: "6" },
        { stdin: "4", expectedOutput: "8" },
      ],
      stopOnFirstFailure: true,
    });
    expect(r.tests!.cases.map((c) => c.verdict)).toEqual([
      "accepted",
      "wrong_answer",
      "skipped",
      "skipped",
    ]);
    expect(r.tests).toMatchObject({ passed: 1, failed: 1, skipped: 2, score: 10, maxScore: 13 });
  });

  it("a runtime error, and all accepted makes the run completed", async () => {
    const crash = await warden.execute({
      language: "python",
      code: "import sys\nsys.exit(int(input()))",
      tests: [{ stdin: "0" }, { stdin: "3" }],
    });
    expect(crash.tests!.cases.map((c) => c.verdict)).toEqual(["accepted", "runtime_error"]);
    expect(crash.tests!.cases[1]!.exitCode).toBe(3);
    const fine = await warden.execute({
      language: "python",
      code: "print(input())",
      tests: [{ stdin: "a", expectedOutput: "a" }],
    });
    expect(fine).toMatchObject({ status: "completed", success: true });
  });

  it("a compile error: compile_error, every case skipped, today's compile step", async () => {
    const r = await warden.execute({
      language: "cpp",
      code: "int main() { this is not C++ }",
      tests: [{ stdin: "1" }, { stdin: "2" }],
    });
    expect(r.tests).toMatchObject({ verdict: "compile_error", skipped: 2, passed: 0 });
    expect(r.compile?.status).toBe("failed");
    expect(r.error?.code).toBe("INVALID_CODE");
    expect(r.status).toBe("failed");
  });
});
