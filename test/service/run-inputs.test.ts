/**
 * What a newcomer sends works: Java with any public class holding main (CLI,
 * REST, Piston), /workspace/output/ there to write artifacts into; and every
 * limit REST accepts is observably applied, or refused naming the field.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { javaEntry } from "../../src/runtimes/java.js";
import { available } from "../helpers/sandbox.js";
import { startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
const root = join(import.meta.dirname, "..", "..");

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});

interface Result {
  status: string;
  stdout: string;
  stderr: string;
  truncated: { stdout: boolean };
  compile: { status: string; stderr: string } | null;
  artifacts: { name: string; size: number }[];
  error: { code: string; message: string } | null;
}

async function run(body: Record<string, unknown>): Promise<{ status: number; result: Result }> {
  const res = await server.request("POST", "/v1/executions", { body });
  return { status: res.status, result: (await res.json()) as Result };
}

const GREETER =
  'package demo;\n/* public class Decoy {} */\nclass Helper { static String hi() { return "hi from Greeter"; } }\n' +
  'public class Greeter {\n  public static void main(String[] args) {\n    String s = "public class Nope {";\n    System.out.println(Helper.hi());\n  }\n}\n';

describe("Java: any public class with main", () => {
  it("reads the entry class from the source, whatever the file is called", () => {
    expect(javaEntry(GREETER, "Main.java")).toEqual({
      mainClass: "demo.Greeter",
      fileName: "Greeter.java",
    });
    expect(
      javaEntry("class A {}\nclass B { static public void main(String[] a) {} }", "x.code"),
    ).toEqual({
      mainClass: "B",
      fileName: "B.java",
    });
    expect(javaEntry("record R() { public static void main(String... a) {} }", "R.java")).toEqual({
      mainClass: "R",
      fileName: "R.java",
    });
  });

  it.runIf(available("java"))("REST with code only, a package and a helper class", async () => {
    const { result } = await run({ language: "java", code: GREETER });
    expect(result.stderr).toBe("");
    expect(result).toMatchObject({ status: "completed", stdout: "hi from Greeter\n" });
  });

  it.runIf(available("java"))("Piston with a file named anything", async () => {
    const res = await server.request("POST", "/api/v2/execute", {
      body: {
        language: "java",
        version: "*",
        files: [{ name: "solution.txt", content: GREETER }],
        compile_timeout: 120_000,
        run_timeout: 60_000,
      },
    });
    const answer = (await res.json()) as { run: { stdout: string; code: number } };
    expect(answer.run).toMatchObject({ stdout: "hi from Greeter\n", code: 0 });
  });

  it.runIf(available("java"))("CLI: warden run Foo.java", () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-java-"));
    const file = join(dir, "Foo.java");
    writeFileSync(
      file,
      'public class Foo { public static void main(String[] a) { System.out.println("foo " + a.length); } }',
    );
    const cli = spawnSync(
      process.execPath,
      [join(root, "bin", "warden.js"), "run", file, "--", "x"],
      {
        encoding: "utf8",
        env: { ...process.env, WARDEN_DATA_DIR: join(dir, "data") },
      },
    );
    expect(cli.stderr).toBe("");
    expect(cli.stdout).toBe("foo 1\n");
    expect(cli.status).toBe(0);
  });
});

describe("/workspace/output", () => {
  it("exists in every run: a file written there comes back as an artifact", async () => {
    const { result } = await run({
      language: "python",
      code: "open('/workspace/output/x.txt', 'w').write('artifact')",
    });
    expect(result.status).toBe("completed");
    expect(result.artifacts).toEqual([expect.objectContaining({ name: "x.txt", size: 8 })]);
  });

  it("a run that writes nothing there has no artifacts", async () => {
    const { result } = await run({
      language: "bash",
      code: "test -d /workspace/output && test -w /workspace/output && echo ready",
    });
    expect(result).toMatchObject({ status: "completed", stdout: "ready\n", artifacts: [] });
  });
});

describe("REST limits are honoured", () => {
  it("limits.memoryMb, pids, diskMb, outputBytes and cpuTimeMs each stop a run", async () => {
    const [memory, pids, disk, output, cpu] = await Promise.all([
      run({ language: "python", code: "x = bytearray(200 << 20)", limits: { memoryMb: 32 } }),
      run({
        language: "python",
        code: "import threading, time\nn = 0\ntry:\n    for _ in range(64):\n        threading.Thread(target=time.sleep, args=(2,)).start(); n += 1\nexcept RuntimeError:\n    pass\nprint(n)",
        limits: { pids: 8 },
      }),
      run({
        language: "python",
        code: "open('big', 'wb').write(b'x' * (8 << 20))",
        limits: { diskMb: 2 },
      }),
      run({ language: "python", code: "print('x' * 100_000)", limits: { outputBytes: 1024 } }),
      run({
        language: "python",
        code: "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5: pass\nprint('done')",
        limits: { cpuTimeMs: 300 },
      }),
    ]);
    expect(memory.result.status).toBe("memory_limit");
    expect(Number(pids.result.stdout)).toBeLessThan(8);
    expect(disk.result.status).toBe("disk_limit");
    expect(output.result).toMatchObject({ status: "output_limit", truncated: { stdout: true } });
    expect(cpu.result).toMatchObject({ status: "timeout", stdout: "" });
  });

  it("compileLimits.timeout, memoryMb and cpuTimeMs each stop a compile", async () => {
    const cpp =
      '#include <regex>\nint main() { std::regex r("a+"); return std::regex_match("aa", r) ? 0 : 1; }';
    const [timeout, memory, cpu] = await Promise.all([
      run({
        language: "c",
        code: "int main(void) { return 0; }",
        compileLimits: { timeout: 0.001 },
      }),
      run({ language: "cpp", code: cpp, compileLimits: { memoryMb: 16 } }),
      run({ language: "cpp", code: cpp, compileLimits: { cpuTimeMs: 100 } }),
    ]);
    expect(timeout.result).toMatchObject({ status: "timeout", compile: { status: "timeout" } });
    expect(memory.result).toMatchObject({ compile: { status: "memory_limit" } });
    expect(cpu.result).toMatchObject({ compile: { status: "timeout" } });
    for (const r of [timeout, memory, cpu]) expect(r.result.error?.code).toBe("INVALID_CODE");
  });

  it("refuses compile and CPU limits over the maxima, naming the field and the limit", async () => {
    const refused = async (body: Record<string, unknown>): Promise<string> => {
      const res = await server.request("POST", "/v1/executions", {
        body: { language: "c", code: "int main(void){return 0;}", ...body },
      });
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: { message: string } }).error.message;
    };
    expect(await refused({ compileLimits: { memoryMb: 4096 } })).toBe(
      "compileLimits.memoryMb: 4096 exceeds the maximum 2048 (maxMemoryMB)",
    );
    expect(await refused({ compileLimits: { timeout: 901 } })).toBe(
      "compileLimits.timeout: 901 exceeds the maximum 900 (maxTimeout)",
    );
    expect(await refused({ limits: { cpuTimeMs: 900_001 } })).toMatch(
      /^limits\.cpuTimeMs: 900001 exceeds the maximum 900000/,
    );
  });
});
