/** Every runtime the host has, through the real engine: greeting, stdin, args, env, files, errors. */
import { describe, expect, it } from "vitest";
import { available, runCode } from "../helpers/sandbox.js";

const hello: Record<string, string> = {
  python: 'print("Hello, World!")',
  javascript: 'console.log("Hello, World!")',
  typescript: 'const greeting: string = "Hello, World!";\nconsole.log(greeting);',
  bash: 'echo "Hello, World!"',
  c: '#include <stdio.h>\nint main(void) { puts("Hello, World!"); return 0; }',
  cpp: '#include <iostream>\nint main() { std::cout << "Hello, World!" << std::endl; }',
  java: 'public class Main { public static void main(String[] a) { System.out.println("Hello, World!"); } }',
  go: 'package main\nimport "fmt"\nfunc main() { fmt.Println("Hello, World!") }',
  rust: 'fn main() { println!("Hello, World!"); }',
};

describe("runtimes", () => {
  it.each(Object.keys(hello))("%s prints its greeting", async (language) => {
    if (!available(language)) {
      // Optional languages (java, go, rust) are offered only where installed.
      expect(["java", "go", "rust"]).toContain(language);
      return;
    }
    const result = await runCode(language, hello[language]!);
    expect(result.stderr).toBe("");
    expect(result).toMatchObject({
      status: "completed",
      success: true,
      exitCode: 0,
      stdout: "Hello, World!\n",
    });
  });

  it("feeds stdin and closes it", async () => {
    const result = await runCode(
      "python",
      "import sys\ndata = sys.stdin.read()\nprint(len(data), data.upper())",
      {
        stdin: "abc",
      },
    );
    expect(result.stdout).toBe("3 ABC\n");
  });

  it("passes arguments and the request environment, nothing of Warden's", async () => {
    process.env.WARDEN_TEST_CANARY = "host-secret";
    const result = await runCode(
      "python",
      "import os, sys\nprint(sys.argv[1:], os.environ.get('GREETING'), os.environ.get('WARDEN_TEST_CANARY'), os.getcwd(), os.environ['HOME'])",
      { args: ["a b", "c"], env: { GREETING: "hi" } },
    );
    expect(result.stdout).toBe("['a b', 'c'] hi None /workspace /workspace\n");
  });

  it("writes several files, in subdirectories, with the entry point chosen", async () => {
    const result = await runCode("python", "", {
      files: [
        { path: "lib/helper.py", content: "def twice(x):\n    return 2 * x\n" },
        {
          path: "app.py",
          content:
            "import sys; sys.path.insert(0, 'lib')\nfrom helper import twice\nprint(twice(21))",
        },
      ],
      entrypoint: "app.py",
    });
    expect(result.stdout).toBe("42\n");
  });

  it("reports the exit code and a death by signal exactly", async () => {
    expect(await runCode("bash", "exit 7")).toMatchObject({
      status: "failed",
      exitCode: 7,
      signal: null,
    });
    // 137 on purpose is an exit code, not SIGKILL.
    expect(await runCode("bash", "exit 137")).toMatchObject({
      status: "failed",
      exitCode: 137,
      signal: null,
    });
    expect(
      await runCode("python", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)"),
    ).toMatchObject({
      status: "failed",
      exitCode: null,
      signal: "SIGSEGV",
    });
  });

  it("reports a compile failure as INVALID_CODE with the compiler output", async () => {
    const result = await runCode("c", "int main(void) { return nope; }");
    expect(result).toMatchObject({ status: "failed", success: false, exitCode: null });
    expect(result.error).toMatchObject({ code: "INVALID_CODE", retryable: false });
    expect(result.compile?.status).toBe("failed");
    expect(result.compile?.stderr).toContain("nope");
    expect(result.stdout).toBe("");
  });

  it("returns accounting read from the kernel", async () => {
    const result = await runCode(
      "python",
      "x = bytearray(40 * 1024 * 1024)\nsum(range(3_000_000))",
    );
    expect(result.status).toBe("completed");
    expect(result.metrics.peakMemoryBytes).toBeGreaterThan(40 * 1024 * 1024);
    expect(result.metrics.cpuTimeMs).toBeGreaterThan(0);
    expect(result.metrics.executionTimeMs).toBeGreaterThan(0);
  });

  it("streams output as ordered chunks while the program runs", async () => {
    const chunks: { stream: string; data: string }[] = [];
    const result = await runCode(
      "python",
      "import sys, time\nfor i in range(5):\n    print(i, flush=True)\n    time.sleep(0.05)\nsys.stderr.write('done\\n')",
      { onOutput: (c) => chunks.push(c) },
    );
    const out = chunks.filter((c) => c.stream === "stdout").map((c) => c.data);
    expect(out.length).toBeGreaterThan(1);
    expect(out.join("")).toBe(result.stdout);
    expect(result.stdout).toBe("0\n1\n2\n3\n4\n");
    expect(
      chunks
        .filter((c) => c.stream === "stderr")
        .map((c) => c.data)
        .join(""),
    ).toBe("done\n");
  });

  it("has /workspace/output in every run, and keeps the workspace only when something is in it", async () => {
    const kept: string[] = [];
    const collect = async (workspace: string) => {
      kept.push(workspace);
      return { artifacts: [], rejected: [] };
    };
    // No artifacts: the workspace goes with the run, nothing is read (the zero-cost path).
    const empty = await runCode("bash", "test -d output && echo there", {
      artifacts: { keepIf: "output", collect },
    });
    expect(empty.stdout).toBe("there\n");
    expect(kept).toEqual([]);
    // Written without making the directory first: kept for collection.
    const wrote = await runCode("bash", "echo hi > /workspace/output/a.txt", {
      artifacts: { keepIf: "output", collect },
    });
    expect(wrote.status).toBe("completed");
    expect(kept).toHaveLength(1);
  });
});
