/**
 * Hostile Judge0 clients against a real `warden serve`: oversized and invalid
 * base64, a huge batch, zip bombs and path traversal in additional_files,
 * bad language ids, fields injection, and reading another user's submission.
 * Each is refused with Judge0's error shape, nothing runs, and the server
 * still answers with its memory within a bound.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, startServer, type TestServer } from "../helpers/server.js";
import { writeZip, type Answer } from "./zip-writer.js";

let server: TestServer;
let alice: string;
let bob: string;
const MiB = 1024 * 1024;

async function j0(method: string, path: string, body?: unknown, token = alice) {
  const res = await fetch(`${server.url}/judge0${path}`, {
    method,
    headers: { "x-auth-token": token, "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Answer | string | null = null;
  try {
    json = JSON.parse(text) as Answer;
  } catch {
    json = text;
  }
  return { status: res.status, body: json as Answer };
}

const rssBytes = (): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.process.pid}/status`, "utf8"));
  return Number(m![1]) * 1024;
};
const executions = (): number => server.count("executions");
async function stillUp(): Promise<void> {
  const r = await j0("GET", "/statuses");
  expect(r.status).toBe(200);
}

beforeAll(async () => {
  // The seeded test sends hundreds of requests at once: on a fast machine the per-key burst
  // limit would answer 429 (a 4xx, but not what is under test); raise it for this file.
  const fast = { burst: 10_000, perMinute: 100_000, perHour: 1_000_000 };
  server = await startServer({ config: { server: { rateLimits: { perKey: fast, perIp: fast } } } });
  alice = await createKey(server, "alice", "execute", "alice");
  bob = await createKey(server, "bob", "execute", "bob");
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

describe("Judge0 API under attack", () => {
  it("refuses oversized and invalid base64 by field, running nothing", async () => {
    const before = executions();
    const huge = Buffer.alloc(2 * MiB, 0x61).toString("base64"); // 2 MiB > maxCodeBytes (1 MiB)
    const big = await j0("POST", "/submissions?base64_encoded=true", {
      source_code: huge,
      language_id: 71,
    });
    expect(big).toEqual({
      status: 422,
      body: { source_code: ["is too long (maximum is 1048576 bytes)"] },
    });
    const bad = await j0("POST", "/submissions?base64_encoded=true", {
      source_code: "cHJpbnQoMSk=",
      stdin: "@@not-base64@@",
      language_id: 71,
    });
    expect(bad).toEqual({
      status: 422,
      body: { stdin: ["is not valid base64 (base64_encoded=true)"] },
    });
    expect(executions()).toBe(before);
    await stillUp();
  });

  it("refuses a huge batch before reading its items", async () => {
    const before = executions();
    const items = Array.from({ length: 5000 }, () => ({
      language_id: 71,
      source_code: "print(1)",
    }));
    const r = await j0("POST", "/submissions/batch", { submissions: items });
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      error: "number of submissions in a batch should be less than or equal to 20",
    });
    // 100 tokens fit in a URL (longer ones the server's URL limit refuses first).
    const tokens = Array.from({ length: 100 }, (_, i) => `t${i}`).join(",");
    const got = await j0("GET", `/submissions/batch?tokens=${tokens}`);
    expect(got.status).toBe(400);
    expect(executions()).toBe(before);
    await stillUp();
  });

  it("stops zip bombs in additional_files without inflating them (memory bounded)", async () => {
    const zeros = Buffer.alloc(256 * MiB);
    // Claims 100 bytes, inflates to 256 MiB: stopped at 100.
    const liar = writeZip([{ name: "data.bin", content: zeros, deflate: true, claimSize: 100 }]);
    // Says honestly it is 256 MiB: refused before inflating.
    const honest = writeZip([{ name: "data.bin", content: zeros, deflate: true }]);
    const before = executions();
    const rss = rssBytes();
    for (const zip of [liar, honest]) {
      const r = await j0("POST", "/submissions", {
        source_code: "print(1)",
        language_id: 71,
        additional_files: zip.toString("base64"),
      });
      expect(r.status).toBe(422);
      expect(r.body.additional_files[0]).toMatch(
        /does not inflate to its stated|unpacks to more than/,
      );
    }
    expect(rssBytes() - rss).toBeLessThan(64 * MiB);
    expect(executions()).toBe(before);
    await stillUp();
  }, 60_000);

  it("refuses path traversal, absolute paths and links in additional_files", async () => {
    const before = executions();
    for (const item of [
      { name: "../../etc/cron.d/x", content: "x" },
      { name: "/etc/passwd", content: "x" },
      { name: "a/../../b", content: "x" },
      { name: "link", content: "/etc/shadow", mode: 0o120777 },
    ]) {
      const r = await j0("POST", "/submissions", {
        source_code: "print(1)",
        language_id: 71,
        additional_files: writeZip([item]).toString("base64"),
      });
      expect(r.status, item.name).toBe(422);
      expect(r.body.additional_files[0]).toMatch(/not a safe relative path|only regular files/);
    }
    expect(executions()).toBe(before);
    await stillUp();
  });

  it("refuses bad language ids without echoing more than a bounded id", async () => {
    for (const id of [
      "71; DROP TABLE executions",
      -1,
      "1e309",
      { $gt: 0 },
      "9".repeat(10_000),
      70,
    ]) {
      const r = await j0("POST", "/submissions", { source_code: "print(1)", language_id: id });
      expect(r.status).toBe(422);
      expect(JSON.stringify(r.body).length).toBeLessThan(200);
    }
    await stillUp();
  });

  it("refuses fields it does not know (no prototype keys, bounded echo)", async () => {
    const created = await j0("POST", "/submissions?wait=true", {
      source_code: "print(1)",
      language_id: 71,
    });
    const token = created.body.token;
    const proto = await j0("GET", `/submissions/${token}?fields=__proto__,constructor,toString`);
    expect(proto).toEqual({
      status: 400,
      body: { error: "invalid fields: [__proto__, constructor, toString]" },
    });
    const long = await j0("GET", `/submissions/${token}?fields=${"x,".repeat(1100)}`);
    expect(long.status).toBe(400);
    expect(JSON.stringify(long.body).length).toBeLessThan(200);
    const twice = await j0("GET", `/submissions/${token}?fields=stdout&fields=stderr`);
    expect(twice.status).toBe(400);
    await stillUp();
  }, 60_000);

  it("answers another user's token as not found, alone or in a batch", async () => {
    const mine = await j0("POST", "/submissions?wait=true", {
      source_code: "print('secret')",
      language_id: 71,
    });
    const token = mine.body.token;
    expect((await j0("GET", `/submissions/${token}`)).body.stdout).toBe("secret\n");
    expect(await j0("GET", `/submissions/${token}`, undefined, bob)).toEqual({
      status: 404,
      body: { error: "submission not found" },
    });
    const batch = await j0("GET", `/submissions/batch?tokens=${token}`, undefined, bob);
    expect(batch).toEqual({ status: 200, body: { submissions: [null] } });
    // A REST execution's id is no Judge0 token, even to its owner.
    const rest = await server.request("POST", "/v1/executions", {
      body: { language: "python", code: "print(1)" },
      token: alice,
    });
    const id = ((await rest.json()) as { id: string }).id;
    expect((await j0("GET", `/submissions/${id}`)).status).toBe(404);
    expect((await j0("GET", `/submissions/${token}`, undefined, "wrong-key")).status).toBe(401);
  }, 60_000);

  it("answers 4xx, never 5xx, to submissions of every wrong type (seeded)", async () => {
    let seed = 20_261_130;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const values = [
      null,
      true,
      -1,
      0,
      1.5,
      2 ** 53,
      "",
      "x",
      "true",
      "1e400",
      [],
      [1],
      {},
      { a: 1 },
      "A".repeat(5000),
    ];
    const pick = () => values[Math.floor(next() * values.length)];
    const names = [
      "source_code",
      "stdin",
      "expected_output",
      "number_of_runs",
      "cpu_time_limit",
      "cpu_extra_time",
      "wall_time_limit",
      "memory_limit",
      "stack_limit",
      "max_processes_and_or_threads",
      "enable_per_process_and_thread_time_limit",
      "max_file_size",
      "compiler_options",
      "command_line_arguments",
      "redirect_stderr_to_stdout",
      "callback_url",
      "additional_files",
      "enable_network",
      "__proto__",
      "constructor",
    ];
    const before = executions();
    for (let i = 0; i < 200; i++) {
      // language_id is never a language here: nothing may run, whatever else the body holds.
      const body: Record<string, unknown> = { language_id: [70, "x", null, {}, 89][i % 5] };
      for (const n of names) if (next() < 0.5) body[n] = pick();
      const query = ["", "?base64_encoded=true", "?wait=true&fields=*"][i % 3]!;
      const batch = i % 7 === 0;
      const r = await j0(
        "POST",
        `/submissions${batch ? "/batch" : ""}${query}`,
        batch ? { submissions: [body, pick()] } : body,
      );
      expect(r.status, JSON.stringify(body).slice(0, 300)).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    expect(executions()).toBe(before);
    await stillUp();
  }, 120_000);
});
