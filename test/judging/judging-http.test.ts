/**
 * Test-case runs as a client meets them: REST (bad requests named by field),
 * test suites (upload, testsFrom, owner only), `test` events over SSE, and
 * the CLI's `warden run --tests DIR` (table, --json, exit codes).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";
import { warden } from "../helpers/cli.js";
import { makeTar } from "./tar.js";

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ config: { judging: { maxTests: 50, maxSuiteMb: 1 } } });
});
afterAll(async () => {
  await server?.stop();
});

const DOUBLE = "n = int(input())\nprint(n * 2)";

async function tokenFor(userId: string): Promise<string> {
  const made = await server.request("POST", "/api/sandbox/keys", {
    body: { name: `${userId}-key`, userId, scopes: ["execute"] },
  });
  return ((await made.json()) as { token: string }).token;
}

async function upload(tar: Buffer, token = server.adminToken): Promise<Response> {
  return fetch(`${server.url}/v1/test-suites`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/x-tar" },
    body: tar,
  });
}

describe("REST", () => {
  it("refuses bad requests naming the field and the limit", async () => {
    const refused = async (body: Record<string, unknown>): Promise<string> => {
      const r = await server.request("POST", "/v1/executions", {
        body: { language: "python", code: DOUBLE, ...body },
      });
      expect(r.status).toBe(400);
      return ((await r.json()) as { error: { message: string } }).error.message;
    };
    expect(await refused({ tests: Array.from({ length: 51 }, () => ({})) })).toMatch(
      /^tests: at most 50 cases \(judging.maxTests\)/,
    );
    expect(await refused({ tests: [{}, { stdin: "x".repeat(1024 * 1024 + 1) }] })).toMatch(
      /^tests\[1\].stdin: must be at most 1048576 bytes/,
    );
    expect(await refused({ tests: [{}], compare: { mode: "checker" } })).toMatch(
      /^compare.checker: required when compare.mode is checker/,
    );
    expect(await refused({ tests: [{ limits: { memoryMb: 1e6 } }] })).toMatch(
      /^tests\[0\].limits.memoryMb/,
    );
  });

  it("answers per-case verdicts and streams them as `test` events", async () => {
    const accepted = await server.request("POST", "/v1/executions", {
      body: {
        language: "python",
        code: DOUBLE,
        wait: false,
        tests: [
          { stdin: "1", expectedOutput: "2" },
          { stdin: "2", expectedOutput: "5" },
        ],
      },
    });
    const { id } = (await accepted.json()) as { id: string };
    const sse = await (
      await fetch(`${server.url}/v1/executions/${id}/events`, {
        headers: { authorization: `Bearer ${server.adminToken}` },
      })
    ).text();
    const tests = [...sse.matchAll(/^event: test\ndata: (.*)$/gm)].map(
      (m) => JSON.parse(m[1]!) as { name: string; verdict: string },
    );
    expect(tests.map((t) => [t.name, t.verdict])).toEqual([
      ["1", "accepted"],
      ["2", "wrong_answer"],
    ]);
    expect(sse).toMatch(/event: result\n/);
    const stored = await (await server.request("GET", `/v1/executions/${id}`)).json();
    expect(stored).toMatchObject({
      status: "failed",
      tests: { verdict: "wrong_answer", passed: 1 },
    });
  });
});

describe("test suites", () => {
  it("uploads a tar of NAME.in/NAME.out, runs it with testsFrom, shows it to its owner only", async () => {
    const tar = makeTar([
      { name: "1.in", content: "1\n" },
      { name: "1.out", content: "2\n" },
      { name: "2.in", content: "21\n" },
      { name: "2.out", content: "42\n" },
    ]);
    const made = await upload(tar);
    expect(made.status).toBe(201);
    const suite = (await made.json()) as { id: string; cases: number };
    expect(suite).toMatchObject({ id: expect.stringMatching(/^suite_/), cases: 2 });
    const result = (await (
      await server.request("POST", "/v1/executions", {
        body: { language: "python", code: DOUBLE, testsFrom: suite.id },
      })
    ).json()) as { status: string; tests: { passed: number } };
    expect(result).toMatchObject({ status: "completed", tests: { passed: 2 } });

    const other = await tokenFor("mallory");
    const seen = await server.request("GET", `/v1/test-suites/${suite.id}`, { token: other });
    expect(seen.status).toBe(404);
    const run = await server.request("POST", "/v1/executions", {
      token: other,
      body: { language: "python", code: DOUBLE, testsFrom: suite.id },
    });
    expect(run.status).toBe(404);
    expect((await server.request("GET", `/v1/test-suites/${suite.id}`)).status).toBe(200);
  });

  it("refuses hostile or oversized archives", async () => {
    const link = await upload(makeTar([{ name: "1.in", type: "2", linkname: "/etc/shadow" }]));
    expect(link.status).toBe(400);
    expect(await link.text()).toMatch(/only regular files/);
    const outside = await upload(makeTar([{ name: "../1.in", content: "x" }]));
    expect(outside.status).toBe(400);
    const big = await upload(Buffer.alloc(2 * 1024 * 1024));
    expect(big.status).toBe(413);
    expect(await big.text()).toMatch(/judging.maxSuiteMb/);
    expect((await server.request("GET", "/healthz")).status).toBe(200);
  });
});

describe("warden run --tests DIR", () => {
  const dir = mkdtempSync(join(tmpdir(), "warden-cli-tests-"));
  const cases = join(dir, "cases");
  mkdirSync(cases);
  for (const [name, input, output] of [
    ["2", "2", "4"],
    ["10", "10", "20"],
    ["1", "1", "2"],
  ]) {
    writeFileSync(join(cases, `${name}.in`), input!);
    writeFileSync(join(cases, `${name}.out`), output!);
  }
  const good = join(dir, "good.py");
  writeFileSync(good, DOUBLE);
  const bad = join(dir, "bad.py");
  writeFileSync(bad, "print(int(input()) + 2)");
  const env = { WARDEN_DATA_DIR: join(dir, "data") };

  it("exit 0 when all pass, a table in name order; exit 1 otherwise; --json", async () => {
    const ok = await warden(["run", good, "--tests", cases], { env });
    expect(ok.code).toBe(0);
    expect(
      ok.stdout
        .split("\n")
        .slice(1, 4)
        .map((l) => l.split(/\s+/)[0]),
    ).toEqual(["1", "2", "10"]);
    expect(ok.stdout).toMatch(/accepted: 3\/3 passed/);
    const wrong = await warden(["run", bad, "--tests", cases, "--json"], { env });
    expect(wrong.code).toBe(1);
    const result = JSON.parse(wrong.stdout) as { tests: { passed: number; verdict: string } };
    // 2 + 2 = 4 = 2 × 2: one case passes by chance.
    expect(result.tests).toMatchObject({ passed: 1, verdict: "wrong_answer" });
    const broken = join(dir, "broken.c");
    writeFileSync(broken, "int main( {");
    const compileError = await warden(["run", broken, "--tests", cases, "--json"], { env });
    expect(compileError.code).toBe(1);
    expect(JSON.parse(compileError.stdout)).toMatchObject({ tests: { verdict: "compile_error" } });
  });

  it("the program's arguments reach every case, as `args` does over REST", async () => {
    const times = join(dir, "times.py");
    writeFileSync(times, "import sys\nprint(int(input()) * int(sys.argv[1]))\n");
    const ok = await warden(["run", times, "--tests", cases, "--", "2"], { env });
    expect(ok.stdout).toMatch(/accepted: 3\/3 passed/);
    expect(ok.code).toBe(0);
  });
});
