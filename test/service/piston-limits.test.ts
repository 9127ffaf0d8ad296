/**
 * Every limit a Piston request may carry is honoured or refused, never read and
 * dropped: through the published piston-client where it can send the field,
 * raw HTTP where it cannot (run_cpu_time, compile_cpu_time).
 */
import piston from "piston-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
const MiB = 1024 * 1024;

beforeAll(async () => {
  server = await startServer({
    env: { WARDEN_PISTON_ANONYMOUS: "true" },
    config: {
      server: { rateLimits: { anonymous: { burst: 100, perMinute: 1000, perHour: 10_000 } } },
    },
  });
});
afterAll(async () => {
  await server?.stop();
});

interface Stage {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: string | null;
  status: string | null;
  message: string | null;
  cpu_time: number | null;
  wall_time: number | null;
}
interface Answer {
  run: Stage;
  compile?: Stage;
  message?: string;
}

async function raw(body: Record<string, unknown>): Promise<{ status: number; body: Answer }> {
  const res = await fetch(`${server.url}/api/v2/execute`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ version: "*", ...body }),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

/** A C++ file that takes g++ a good second of CPU and a few hundred MiB. */
const HEAVY_CPP =
  '#include <regex>\n#include <iostream>\nint main() { std::regex r("a+b"); std::cout << std::regex_match("aab", r) << "\\n"; }';
/** Burns 1.5 s of CPU, then says so. */
const BURN =
  "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5: pass\nprint('done')";

describe("Piston limits are honoured", () => {
  it("compile_timeout: a compile past it is the compile stage's TO (piston-client)", async () => {
    const client = piston({ server: server.url });
    const answer = (await client.execute("c", "int main(void) { return 0; }", {
      compileTimeout: 1,
    })) as Answer;
    expect(answer.compile).toMatchObject({ status: "TO", message: "Time limit exceeded" });
  });

  it("compile_memory_limit: a compiler that needs more is stopped (piston-client)", async () => {
    const client = piston({ server: server.url });
    const answer = (await client.execute("cpp", HEAVY_CPP, {
      compileMemoryLimit: 16 * MiB,
      compileTimeout: 120_000,
    })) as Answer;
    expect(answer.compile).toMatchObject({ status: "SG", message: "Memory limit exceeded" });
  });

  it("compile_cpu_time: a compile past it is TO (raw HTTP)", async () => {
    const { body } = await raw({
      language: "cpp",
      files: [{ content: HEAVY_CPP }],
      compile_cpu_time: 100,
      compile_timeout: 120_000,
    });
    expect(body.compile).toMatchObject({ status: "TO" });
    expect(body.compile!.cpu_time).toBeGreaterThanOrEqual(100);
  });

  it("run_cpu_time: a run past it is TO, with its CPU time (raw HTTP)", async () => {
    const { body } = await raw({
      language: "python",
      files: [{ content: BURN }],
      run_cpu_time: 300,
      run_timeout: 120_000,
    });
    expect(body.run).toMatchObject({ status: "TO", stdout: "" });
    expect(body.run.cpu_time).toBeGreaterThanOrEqual(300);
  });

  it("run_memory_limit: a run that passes it is killed (piston-client)", async () => {
    const client = piston({ server: server.url });
    const answer = (await client.execute("python", "x = bytearray(200 * 1024 * 1024)\nprint(1)", {
      runMemoryLimit: 32 * MiB,
      runTimeout: 60_000,
    })) as Answer;
    expect(answer.run).toMatchObject({ status: "SG", message: "Memory limit exceeded" });
  });

  it("args, stdin and several files (piston-client)", async () => {
    const client = piston({ server: server.url });
    const answer = (await client.execute({
      language: "python",
      version: "*",
      files: [
        {
          name: "main.py",
          content: "import sys, helper\nprint(helper.twice(sys.stdin.read()), sys.argv[1:])",
        },
        { name: "helper.py", content: "def twice(s):\n    return repr(s * 2)\n" },
      ],
      stdin: "ab",
      args: ["x", "y z"],
      runTimeout: 60_000,
    } as never)) as Answer;
    // Piston ends stdin with a newline.
    expect(answer.run).toMatchObject({ stdout: "'ab\\nab\\n' ['x', 'y z']\n", code: 0 });
  });

  it("-1 and 0 mean the server's own limit", async () => {
    const { status, body } = await raw({
      language: "python",
      files: [{ content: "print('ok')" }],
      run_timeout: -1,
      run_memory_limit: -1,
      compile_timeout: 0,
      run_cpu_time: -1,
    });
    expect(status).toBe(200);
    expect(body.run.stdout).toBe("ok\n");
  });
});

describe("Piston limits past Warden's maxima are refused", () => {
  it.each([
    ["run_timeout", 900_001, 900_000],
    ["compile_timeout", 900_001, 900_000],
    ["run_cpu_time", 900_001, 900_000],
    ["compile_cpu_time", 900_001, 900_000],
    ["run_memory_limit", 2048 * MiB + 1, 2048 * MiB],
    ["compile_memory_limit", 2048 * MiB + 1, 2048 * MiB],
  ])("%s over the maximum is a 400 naming the field and the limit", async (field, value, max) => {
    const { status, body } = await raw({
      language: "c",
      files: [{ content: "int main(void) { return 0; }" }],
      [field]: value,
    });
    expect(status).toBe(400);
    expect(body).toEqual({ message: `${field} cannot exceed the configured limit of ${max}` });
  });

  it("refuses other negatives and memory below Warden's minimum", async () => {
    const files = [{ content: "print(1)" }];
    const negative = await raw({ language: "python", files, run_cpu_time: -5 });
    expect(negative.status).toBe(400);
    expect(negative.body.message).toMatch(/^run_cpu_time must be non-negative/);
    const tiny = await raw({ language: "python", files, run_memory_limit: 1000 });
    expect(tiny.status).toBe(400);
    expect(tiny.body.message).toBe(`run_memory_limit must be at least ${16 * MiB} bytes`);
    const big = await raw({ language: "python", files, stdin: "x".repeat(2 * MiB) });
    expect(big.status).toBe(400);
    expect(big.body.message).toMatch(/^stdin: must be at most \d+ bytes \(maxStdinBytes\)/);
  });
});
