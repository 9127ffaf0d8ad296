/** The published piston-client package, unchanged, against Warden's Piston-compatible API. */
import piston from "piston-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { versionMatches } from "../../src/http/routes/piston.js";
import { startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let anonymous: TestServer;

beforeAll(async () => {
  [server, anonymous] = await Promise.all([
    startServer(),
    startServer({
      env: { WARDEN_PISTON_ANONYMOUS: "true" },
      config: {
        server: { rateLimits: { anonymous: { burst: 100, perMinute: 1000, perHour: 10_000 } } },
      },
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([server?.stop(), anonymous?.stop()]);
});

interface PistonResult {
  language: string;
  version: string;
  run: {
    stdout: string;
    stderr: string;
    output: string;
    code: number | null;
    signal: string | null;
    status: string | null;
  };
  compile?: { status: string | null; stderr: string };
  message?: string;
}

describe("Piston compatibility", () => {
  it("piston-client runs Python and JavaScript (anonymous allowed)", async () => {
    const client = piston({ server: anonymous.url });
    const runtimes = (await client.runtimes()) as { language: string; version: string }[];
    expect(runtimes.map((r) => r.language)).toEqual(
      expect.arrayContaining(["python", "javascript"]),
    );
    const py = (await client.execute(
      "python",
      "import sys\nprint('hello from', sys.argv[1:])",
    )) as PistonResult;
    expect(py).toMatchObject({
      language: "python",
      run: { stdout: "hello from ['1', '2', '3']\n", code: 0, signal: null, status: null },
    });
    const js = (await client.execute("javascript", "console.log(6 * 7)")) as PistonResult;
    expect(js.run).toMatchObject({ stdout: "42\n", output: "42\n", code: 0 });
    // An alias: piston-client then sends no version, which Warden reads as "*".
    const alias = (await client.execute("py", "print('alias ok')")) as PistonResult;
    expect(alias.run.stdout).toBe("alias ok\n");
  });

  it("reports Piston's status letters and compile stage", async () => {
    const client = piston({ server: anonymous.url });
    const failed = (await client.execute("python", "import sys; sys.exit(3)")) as PistonResult;
    expect(failed.run).toMatchObject({ code: 3, status: "RE" });
    const timeout = (await client.execute("python", "while True: pass", {
      runTimeout: 500,
    })) as PistonResult;
    expect(timeout.run).toMatchObject({ status: "TO", signal: expect.stringMatching(/^SIG/) });
    const compileError = (await client.execute("c", "int main( { }")) as PistonResult;
    expect(compileError.compile?.status).toBe("RE");
    expect(compileError.run.status).toBe("RE");
  });

  it("answers errors as Piston does: 400 {message}", async () => {
    const client = piston({ server: anonymous.url });
    const unknown = (await client.execute({
      language: "cobol",
      version: "*",
      files: [{ content: "x" }],
    } as never)) as PistonResult;
    expect(unknown.message).toMatch(/cobol-\* runtime is unknown/);
    const res = await fetch(`${anonymous.url}/api/v2/execute`, {
      method: "POST",
      body: JSON.stringify({ language: "python", version: "*" }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ message: "files is required as an array" });
  });

  it("needs a key unless anonymous access is switched on", async () => {
    const res = await fetch(`${server.url}/api/v2/runtimes`);
    expect(res.status).toBe(401);
    const keyed = await server.request("POST", "/api/v2/execute", {
      body: { language: "python", version: "3", files: [{ content: "print(1)" }] },
    });
    expect(((await keyed.json()) as PistonResult).run.stdout).toBe("1\n");
  });

  it("matches versions like Piston's semver ranges", () => {
    expect(versionMatches("*", "3.11.2")).toBe(true);
    expect(versionMatches("3.11.2", "3.11.2")).toBe(true);
    expect(versionMatches("3", "3.11.2")).toBe(true);
    expect(versionMatches("3.x", "3.11.2")).toBe(true);
    expect(versionMatches("3.10", "3.11.2")).toBe(false);
  });
});
