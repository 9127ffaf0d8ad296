/**
 * Judge0 CE's documented requests and answers, through a real `warden serve`
 * and real sandboxes: create with and without wait, GET by token with the
 * default and `*` fields, base64 both ways, a compile error, a runtime error,
 * a time limit, a wrong answer, batches, and the information routes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, createKey, eventually, type TestServer } from "../helpers/server.js";
import { writeZip, type Answer } from "./zip-writer.js";

let server: TestServer;
let key: string;

/** A Judge0 client's request: JSON, the key in X-Auth-Token. */
async function j0(method: string, path: string, body?: unknown, token = key) {
  const res = await fetch(`${server.url}/judge0${path}`, {
    method,
    headers: {
      "x-auth-token": token,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Answer) : null };
}

const b64 = (s: string) => Buffer.from(s).toString("base64");
const unb64 = (s: string) => Buffer.from(s, "base64").toString("utf8");

// Judge0's documentation's C program (docs/api/submissions/create_a_submission.md).
const HELLO_C =
  '#include <stdio.h>\n\nint main(void) {\n  char name[10];\n  scanf("%s", name);\n  printf("hello, %s\\n", name);\n  return 0;\n}';

beforeAll(async () => {
  server = await startServer();
  key = await createKey(server, "judge0", "execute", "alice");
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

describe("Judge0 submissions", () => {
  it("runs the documentation's wait=true example (language_id as a string, expected_output)", async () => {
    const r = await j0("POST", "/submissions?wait=true", {
      source_code: HELLO_C,
      language_id: "4",
      stdin: "Judge0",
      expected_output: "hello, Judge0",
    });
    expect(r.status).toBe(201);
    expect(Object.keys(r.body!).sort()).toEqual(
      ["compile_output", "memory", "message", "status", "stderr", "stdout", "time", "token"].sort(),
    );
    expect(r.body).toMatchObject({
      stdout: "hello, Judge0\n",
      stderr: null,
      compile_output: null,
      message: null,
      status: { id: 3, description: "Accepted" },
    });
    expect(r.body!.time).toMatch(/^\d+\.\d{3}$/);
    expect(typeof r.body!.memory).toBe("number");
  }, 60_000);

  it("creates without wait (201 {token}), then GET by token answers the default fields and fields=*", async () => {
    const created = await j0("POST", "/submissions", {
      source_code: HELLO_C,
      language_id: 50,
      stdin: "world",
    });
    expect(created.status).toBe(201);
    expect(Object.keys(created.body!)).toEqual(["token"]);
    const token = created.body!.token;
    let got: Awaited<ReturnType<typeof j0>> | undefined;
    await eventually(async () => {
      got = await j0("GET", `/submissions/${token}`);
      return got.body!.status.id > 2;
    }, 60_000);
    expect(got!.body).toMatchObject({ token, stdout: "hello, world\n", status: { id: 3 } });
    const all = await j0("GET", `/submissions/${token}?fields=*`);
    expect(all.body).toMatchObject({
      source_code: HELLO_C,
      language_id: 50,
      stdin: "world",
      expected_output: null,
      status_id: 3,
      number_of_runs: 1,
      cpu_time_limit: "5.0",
      memory_limit: 128000,
      exit_code: 0,
      language: { id: 50 },
    });
    expect(Object.keys(all.body!)).toHaveLength(40);
    const some = await j0(
      "GET",
      `/submissions/${token}?fields=stdout,status_id,language_id,stderr`,
    );
    expect(some.body).toEqual({
      stdout: "hello, world\n",
      status_id: 3,
      language_id: 50,
      stderr: null,
    });
  }, 90_000);

  it("takes and answers base64 (base64_encoded=true)", async () => {
    const r = await j0("POST", "/submissions?base64_encoded=true&wait=true", {
      source_code: b64(HELLO_C),
      language_id: 50,
      stdin: b64("Judge0"),
      expected_output: b64("hello, Judge0"),
    });
    expect(r.body!.status.id).toBe(3);
    expect(unb64(r.body!.stdout)).toBe("hello, Judge0\n");
    const got = await j0(
      "GET",
      `/submissions/${r.body!.token}?base64_encoded=true&fields=stdout,source_code`,
    );
    expect(unb64(got.body!.source_code)).toBe(HELLO_C);
  }, 60_000);

  it("reports a compilation error, a runtime error (NZEC and SIGSEGV), a time limit and a wrong answer", async () => {
    const ce = await j0("POST", "/submissions?wait=true", {
      source_code: "int main(void) { return x; }",
      language_id: 50,
    });
    expect(ce.body!.status).toEqual({ id: 6, description: "Compilation Error" });
    expect(ce.body!.compile_output).toContain("error");
    expect(ce.body!.time).toBeNull();

    const nzec = await j0("POST", "/submissions?wait=true&fields=status,exit_code,message", {
      source_code: "import sys\nsys.exit(3)",
      language_id: 71,
    });
    expect(nzec.body).toEqual({
      status: { id: 11, description: "Runtime Error (NZEC)" },
      exit_code: 3,
      message: "Exited with error status 3",
    });

    const segv = await j0("POST", "/submissions?wait=true&fields=status,exit_signal", {
      source_code: "int main(void) { volatile int *p = 0; return *p; }",
      language_id: 50,
    });
    expect(segv.body).toEqual({
      status: { id: 7, description: "Runtime Error (SIGSEGV)" },
      exit_signal: 11,
    });

    const tle = await j0("POST", "/submissions?wait=true", {
      source_code: "while True: pass",
      language_id: 71,
      cpu_time_limit: 1,
      cpu_extra_time: 0,
    });
    expect(tle.body!.status).toEqual({ id: 5, description: "Time Limit Exceeded" });

    const wa = await j0("POST", "/submissions?wait=true", {
      source_code: "print('hello,  world')",
      language_id: 71,
      expected_output: "hello, world",
    });
    expect(wa.body!.status).toEqual({ id: 4, description: "Wrong Answer" });
    // Judge0's rule: trailing whitespace of each line and of the text is ignored.
    const ok = await j0("POST", "/submissions?wait=true", {
      source_code: "print('a  \\nb\\n\\n')",
      language_id: 71,
      expected_output: "a\nb",
    });
    expect(ok.body!.status.id).toBe(3);
  }, 120_000);

  it("splits command_line_arguments like a shell and runs additional_files' zip", async () => {
    const r = await j0("POST", "/submissions?wait=true", {
      source_code: "import sys\nprint(sys.argv[1:])",
      language_id: 71,
      command_line_arguments: `a "b c" 'd $HOME' e\\ f`,
    });
    expect(r.body!.stdout).toBe("['a', 'b c', 'd $HOME', 'e f']\n");
  }, 60_000);

  it("unpacks additional_files beside the source and merges stderr when asked", async () => {
    const zip = writeZip([
      { name: "helper.py", content: "GREETING = 'hi from the zip'\n", deflate: true },
      { name: "data/n.txt", content: "42" },
    ]);
    const r = await j0("POST", "/submissions?wait=true", {
      source_code:
        "import sys, helper\nprint(helper.GREETING)\nprint(open('data/n.txt').read())\nprint('err', file=sys.stderr)",
      language_id: 71,
      additional_files: zip.toString("base64"),
      redirect_stderr_to_stdout: true,
    });
    expect(r.body).toMatchObject({
      status: { id: 3 },
      stdout: "hi from the zip\n42\nerr\n",
      stderr: null,
    });
  }, 60_000);

  it("creates a batch with base64 and gets it back by tokens", async () => {
    const created = await j0("POST", "/submissions/batch?base64_encoded=true", {
      submissions: [
        { language_id: 71, source_code: b64("print(input())"), stdin: b64("one") },
        { language_id: 63, source_code: b64("console.log('two')") },
        { language_id: 9999, source_code: b64("x") },
      ],
    });
    expect(created.status).toBe(201);
    const list = created.body as unknown as Record<string, unknown>[];
    expect(list[2]).toEqual({ language_id: ["language with id 9999 doesn't exist"] });
    const tokens = [list[0]!.token, list[1]!.token, "no-such-token"].join(",");
    let got: Awaited<ReturnType<typeof j0>> | undefined;
    await eventually(async () => {
      got = await j0("GET", `/submissions/batch?tokens=${tokens}&base64_encoded=true`);
      return got.body!.submissions.slice(0, 2).every((s: Answer) => s.status.id > 2);
    }, 60_000);
    const [a, b, none] = got!.body!.submissions;
    expect(unb64(a!.stdout)).toBe("one\n");
    expect(unb64(b!.stdout)).toBe("two\n");
    expect(none).toBeNull();
  }, 90_000);

  it("refuses what it cannot honour, in Judge0's 422 shape", async () => {
    const r = await j0("POST", "/submissions", { source_code: HELLO_C });
    expect(r).toEqual({ status: 422, body: { language_id: ["can't be blank"] } });
    const big = await j0("POST", "/submissions", {
      source_code: HELLO_C,
      language_id: 4,
      wall_time_limit: 100000,
      enable_network: true,
      compiler_options: "-O3",
    });
    expect(big.status).toBe(422);
    expect(big.body!.wall_time_limit).toEqual(["must be less than or equal to 20"]);
    expect((big.body!.enable_network as string[])[0]).toMatch(/not allowed/);
    expect(big.body!.compiler_options).toEqual(["setting compiler options is not allowed"]);
    const cb = await j0("POST", "/submissions", {
      source_code: "1",
      language_id: 71,
      // A literal private address: refused before any lookup, nothing sent anywhere.
      callback_url: "http://10.0.0.1/",
    });
    expect(cb.status).toBe(422);
    expect(cb.body!.callback_url).toEqual([expect.stringMatching(/refused destination/)]);
  });

  it("answers output that is not UTF-8 only in base64, as Judge0 does", async () => {
    const r = await j0("POST", "/submissions?wait=true", {
      source_code: "import sys\nsys.stdout.buffer.write(b'\\xfe')",
      language_id: 71,
    });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      token: expect.any(String),
      error:
        "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter",
    });
    const got = await j0("GET", `/submissions/${r.body!.token}`);
    expect(got.status).toBe(400);
    const ok = await j0("GET", `/submissions/${r.body!.token}?base64_encoded=true`);
    expect(ok.status).toBe(200);
  }, 60_000);
});

describe("Judge0 information routes", () => {
  it("lists languages installed here, statuses, about and config_info", async () => {
    const langs = await j0("GET", "/languages");
    const byId = new Map(
      (langs.body as unknown as { id: number; name: string }[]).map((l) => [l.id, l.name]),
    );
    expect(byId.get(71)).toMatch(/^Python \(3\.\d+\.\d+\)$/);
    expect(byId.get(50)).toMatch(/^C \((GCC|Clang) \d+/);
    expect(byId.get(92)).toBe(byId.get(71)); // another Judge0 version of Python 3: our one runtime
    expect(byId.has(4)).toBe(false); // archived: accepted, listed only by /languages/all
    const one = await j0("GET", "/languages/92");
    expect(one.body).toMatchObject({ id: 92, is_archived: false, source_file: "main.py" });
    expect((await j0("GET", "/languages/70")).status).toBe(404);
    const statuses = await j0("GET", "/statuses");
    expect(statuses.body).toHaveLength(14);
    expect((statuses.body as unknown as unknown[])[10]).toEqual({
      id: 11,
      description: "Runtime Error (NZEC)",
    });
    expect((await j0("GET", "/about")).body).toMatchObject({ version: "1.13.1" });
    const info = await j0("GET", "/config_info");
    expect(info.body).toMatchObject({
      max_submission_batch_size: 20,
      enable_network: false,
      cpu_time_limit: 5,
    });
  });

  it("takes the key as Authorization: Bearer or X-Auth-User too, and refuses without one", async () => {
    const bearer = await fetch(`${server.url}/judge0/statuses`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(bearer.status).toBe(200);
    const user = await fetch(`${server.url}/judge0/authenticate`, {
      method: "POST",
      headers: { "x-auth-user": key },
    });
    expect(user.status).toBe(200);
    const none = await fetch(`${server.url}/judge0/statuses`);
    expect(none.status).toBe(401);
    expect(await none.json()).toHaveProperty("error");
    // Not on other routes: only Judge0's own read Judge0's headers.
    const v1 = await fetch(`${server.url}/v1/runtimes`, { headers: { "x-auth-token": key } });
    expect(v1.status).toBe(401);
  });
});

describe("Judge0's official Python SDK (judge0 on PyPI), replayed on the wire", () => {
  // Not installed here (no new packages): its requests are replayed as it sends them
  // (src/judge0/clients.py, submission.py) and its answers checked against its models.
  it("passes its start-up checks: /languages holds its 1.13.1 ids, /config_info fits its Config model", async () => {
    expect((await j0("GET", "/about")).body!.version).toBe("1.13.1");
    const listed = ((await j0("GET", "/languages")).body as unknown as { id: number }[]).map(
      (l) => l.id,
    );
    // LANGUAGE_TO_LANGUAGE_ID["1.13.1"]: BASH 46, C 50, CPP 52, GO 60, JAVA 62, JAVASCRIPT 63, PYTHON3 71, RUST 73, TYPESCRIPT 74.
    for (const id of [50, 52, 62, 63, 71]) expect(listed).toContain(id);
    const info = (await j0("GET", "/config_info")).body!;
    const numbers = [
      "callbacks_max_tries",
      "callbacks_timeout",
      "cpu_extra_time",
      "cpu_time_limit",
      "max_cpu_extra_time",
      "max_cpu_time_limit",
      "max_extract_size",
      "max_file_size",
      "max_max_file_size",
      "max_max_processes_and_or_threads",
      "max_memory_limit",
      "max_number_of_runs",
      "max_processes_and_or_threads",
      "max_queue_size",
      "max_stack_limit",
      "max_submission_batch_size",
      "max_wall_time_limit",
      "memory_limit",
      "number_of_runs",
      "stack_limit",
      "submission_cache_duration",
      "wall_time_limit",
    ];
    const booleans = [
      "allow_enable_network",
      "allow_enable_per_process_and_thread_memory_limit",
      "allow_enable_per_process_and_thread_time_limit",
      "enable_additional_files",
      "enable_batched_submissions",
      "enable_callbacks",
      "enable_command_line_arguments",
      "enable_compiler_options",
      "enable_network",
      "enable_per_process_and_thread_memory_limit",
      "enable_per_process_and_thread_time_limit",
      "enable_submission_delete",
      "enable_wait_result",
      "maintenance_mode",
      "redirect_stderr_to_stdout",
      "use_docs_as_homepage",
    ];
    for (const k of numbers) expect(typeof info[k], k).toBe("number");
    for (const k of booleans) expect(typeof info[k], k).toBe("boolean");
    expect(Array.isArray(info.allowed_languages_for_compile_options)).toBe(true);
  });

  it("creates (base64, wait=false), polls with fields=* and batches as it does", async () => {
    const created = await j0("POST", "/submissions?base64_encoded=true&wait=false", {
      source_code: b64("print(input()[::-1])"),
      language_id: 71,
      stdin: b64("abc"),
      cpu_time_limit: 2.0,
      memory_limit: 128000.0,
    });
    expect(created.status).toBe(201);
    let got: Awaited<ReturnType<typeof j0>> | undefined;
    await eventually(async () => {
      got = await j0("GET", `/submissions/${created.body!.token}?base64_encoded=true&fields=*`);
      return got.body!.status.id > 2;
    }, 60_000);
    expect(unb64(got!.body!.stdout)).toBe("cba\n");
    expect(got!.body!.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
    expect(Number.isFinite(parseFloat(got!.body!.time))).toBe(true);
  }, 90_000);
});

describe("Judge0 at the root (judge0.atRoot)", () => {
  it("answers /submissions and /statuses at / too, beside /v1", async () => {
    const root = await startServer({ config: { judge0: { atRoot: true } } });
    try {
      const token = await createKey(root, "root", "execute", "carol");
      const headers = { "x-auth-token": token, "content-type": "application/json" };
      const statuses = await fetch(`${root.url}/statuses`, { headers });
      expect(statuses.status).toBe(200);
      const created = await fetch(`${root.url}/submissions?wait=true`, {
        method: "POST",
        headers,
        body: JSON.stringify({ source_code: "print(6*7)", language_id: 71 }),
      });
      expect(((await created.json()) as Answer).stdout).toBe("42\n");
      const v1 = await root.request("GET", "/v1/runtimes", { token });
      expect(v1.status).toBe(200);
    } finally {
      await root.stop();
    }
  }, 90_000);
});
