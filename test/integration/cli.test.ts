/** The `warden` command as a user runs it: real process, real exit codes. */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { warden as wardenCli } from "../helpers/cli.js";

const warden = (args: string[], input?: string) => wardenCli(args, { input });

describe("warden run", () => {
  it.each(["hello.py", "hello.js", "hello.ts", "hello.sh", "hello.c", "hello.cpp"])(
    "runs examples/%s",
    async (file) => {
      const r = await warden(["run", join("examples", file)]);
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("Hello, World!\n");
      expect(r.code).toBe(0);
    },
  );

  it("prints exactly the result shape with --json", async () => {
    const r = await warden(["run", "--json", "examples/hello.py"]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(result).sort()).toEqual(
      [
        "id",
        "status",
        "success",
        "exitCode",
        "signal",
        "stdout",
        "stderr",
        "truncated",
        "compile",
        "artifacts",
        "rejectedArtifacts",
        "error",
        "metrics",
        "isolation",
      ].sort(),
    );
    expect(result).toMatchObject({
      status: "completed",
      success: true,
      exitCode: 0,
      signal: null,
      stdout: "Hello, World!\n",
      truncated: { stdout: false, stderr: false },
      compile: null,
      artifacts: [],
      error: null,
    });
    expect(result.id).toMatch(/^exec_[0-9A-Z]{26}$/);
    expect(Object.keys(result.metrics as object).sort()).toEqual(
      [
        "executionTimeMs",
        "cpuTimeMs",
        "peakMemoryBytes",
        "queueTimeMs",
        "retries",
        "warmStart",
        "usage",
      ].sort(),
    );
  });

  it("exits with the program's code, 124 on timeout, and reads code from stdin", async () => {
    expect((await warden(["run", "-l", "python", "-"], "import sys; sys.exit(3)")).code).toBe(3);
    const timeout = await warden(["run", "-l", "bash", "--timeout", "0.5", "-"], "sleep 30");
    expect(timeout.code).toBe(124);
    expect(timeout.stderr).toMatch(/warden: timeout/);
    const args = await warden(
      ["run", "-l", "python", "-", "--", "x", "y"],
      "import sys; print(sys.argv[1:])",
    );
    expect(args.stdout).toBe("['x', 'y']\n");
  });

  it("feeds --stdin and names bad flags and limits", async () => {
    const r = await warden(["run", "-l", "bash", "--stdin", "examples/hello.sh", "-"], "wc -l");
    expect(r.stdout.trim()).toBe("2");
    const tooLong = await warden(["run", "--timeout", "1000", "examples/hello.py"]);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toContain("timeout: 1000 exceeds the maximum 900 (maxTimeout)");
    const unknown = await warden(["run", "README.md"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/cannot tell the language.*--language/);
    const net = await warden(["run", "--allow-net", "*", "examples/hello.py"]);
    expect(net.code).toBe(2);
    expect(net.stderr).toMatch(/network\.allow\[0\]: "\*" is not a host name/);
  });

  it("shows a compile failure with the compiler's message", async () => {
    const r = await warden(["run", "-l", "c", "-"], "int main(void) { return nope; }");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("nope");
    expect(r.stderr).toContain("INVALID_CODE");
  });
});

describe("warden doctor", () => {
  it("checks every prerequisite and passes on this host", async () => {
    const r = await warden(["doctor"]);
    for (const check of [
      "bubblewrap",
      "cgroups",
      "seccomp",
      "isolation self-test",
      "runtime python",
    ])
      expect(r.stdout).toContain(check);
    expect(r.stdout).toContain("Isolation is available.");
    expect(r.code).toBe(0);
  });
});
