/**
 * What a newcomer tripped over in sessions, tried as a client would through
 * `warden serve`: the output directory, raw uploads, one vocabulary (statuses,
 * truncated, the final SSE event), kill routes without a body, extend, and a
 * cell killed at the memory limit.
 */
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BackgroundCommandSchema,
  CellResultSchema,
  CommandResultSchema,
} from "../../src/contract/session.js";
import { createKey, declaredUpload, startServer, type TestServer } from "../helpers/server.js";

const MAX_FILE = 64 * 1024;
const OUTPUT = 32 * 1024;
let server: TestServer;
let ann: string;

beforeAll(async () => {
  server = await startServer({
    config: {
      maxFileBytes: MAX_FILE,
      defaults: { outputBytes: OUTPUT },
      sessionTimeout: 3, // short: the extend test outlives the first TTL + the old 60 s slack
      maxSessionTimeout: 150,
      sessionIdleTimeout: 600,
      maxSessionsPerUser: 10,
      // The kill test sends many requests in a second; rate limits are tested elsewhere.
      server: { rateLimits: { perKey: { burst: 1000, perMinute: 100_000, perHour: 1_000_000 } } },
    },
  });
  ann = await createKey(server, "ann-app", "sessions,execute", "ann");
});
afterAll(async () => {
  await server?.stop();
});

async function newSession(body: Record<string, unknown> = {}): Promise<string> {
  const created = await server.request("POST", "/v1/sessions", {
    token: ann,
    body: { timeout: 120, ...body },
  });
  expect(created.status, await created.clone().text()).toBe(201);
  return `/v1/sessions/${((await created.json()) as { id: string }).id}`;
}

/** A background `sleep 600` in the session at `base`. */
async function startSleeper(base: string) {
  const r = await server.request("POST", `${base}/commands`, {
    token: ann,
    body: { command: "sleep 600", background: true },
  });
  return BackgroundCommandSchema.parse(await r.json());
}

async function command(base: string, body: Record<string, unknown>) {
  const r = await server.request("POST", `${base}/commands`, { token: ann, body });
  expect(r.status).toBe(200);
  return CommandResultSchema.parse(await r.json());
}

/** A request through node:http, to control the headers exactly (fetch adds its own). */
function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  chunks: Buffer[] = [],
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}${path}`, { method, headers }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", (e: NodeJS.ErrnoException) =>
      e.code === "EPIPE" || e.code === "ECONNRESET" ? undefined : reject(e),
    );
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe("sessions for a newcomer", () => {
  it("has /workspace/output from the start: a file written there is an artifact", async () => {
    const base = await newSession();
    const r = await command(base, { command: "test -d output && echo 42 > output/answer.txt" });
    expect(r).toMatchObject({ status: "completed", success: true });
    expect(r.artifacts.map((a) => a.name)).toEqual(["answer.txt"]);
    expect((await server.request("DELETE", base, { token: ann })).status).toBe(204);
  });

  it("stores PUT bodies as raw bytes whatever the content type, bounded by maxFileBytes", async () => {
    const base = await newSession();
    const auth = { authorization: `Bearer ${ann}` };
    const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 13, 0x80]);
    const cases: [string, Record<string, string>, Buffer][] = [
      ["none.bin", {}, bytes],
      ["plain.txt", { "content-type": "text/plain" }, Buffer.from("héllo\n")],
      ["octet.bin", { "content-type": "application/octet-stream" }, bytes],
      ["data.json", { "content-type": "application/json" }, Buffer.from('{"a": 1}')],
      ["empty.txt", { "content-type": "text/plain" }, Buffer.alloc(0)],
    ];
    for (const [name, headers, content] of cases) {
      const put = await rawRequest("PUT", `${base}/files/${name}`, { ...auth, ...headers }, [
        content,
      ]);
      expect(put.status, `${name}: ${put.body}`).toBe(204);
      const back = await server.request("GET", `${base}/files/${name}`, { token: ann });
      expect(Buffer.from(await back.arrayBuffer()), name).toEqual(content);
    }
    // Beyond maxFileBytes: on the declared length, and counted as the bytes arrive (chunked).
    expect(
      await declaredUpload(server, "PUT", `${base}/files/big.bin`, ann, 1 << 30, "text/plain"),
    ).toBe(413);
    const chunked = await rawRequest(
      "PUT",
      `${base}/files/big.bin`,
      { ...auth, "transfer-encoding": "chunked" },
      Array.from({ length: 5 }, () => Buffer.alloc(MAX_FILE / 2, 7)),
    );
    expect(chunked.status).toBe(413);
    expect(chunked.body).toMatch(new RegExp(`${MAX_FILE}.*maxFileBytes`));
    // A form belongs to POST (stored as given, it would keep its envelope).
    const form = await rawRequest(
      "PUT",
      `${base}/files/form.bin`,
      { ...auth, "content-type": "multipart/form-data; boundary=x" },
      [Buffer.from("--x--\r\n")],
    );
    expect(form.status).toBe(415);
    // JSON bodies elsewhere still parse.
    expect((await command(base, { command: "cat data.json" })).stdout).toBe('{"a": 1}');
    expect((await server.request("DELETE", base, { token: ann })).status).toBe(204);
  });

  it("speaks one vocabulary: statuses, truncated per stream, `result` last in every stream", async () => {
    const base = await newSession();
    const flood = await command(base, { command: `head -c ${OUTPUT * 2} /dev/zero | tr '\\0' a` });
    expect(flood).toMatchObject({
      status: "output_limit",
      success: false,
      truncated: { stdout: true, stderr: false },
    });
    expect(flood.stdout.length).toBe(OUTPUT);
    const ok = await command(base, { command: "echo hi" });
    expect(ok).toMatchObject({ status: "completed", truncated: { stdout: false, stderr: false } });
    expect((await command(base, { command: "kill -9 $$" })).status).toBe("failed");

    // Background: the same statuses (no `exited`), and its stream ends with `result`.
    const started = await server.request("POST", `${base}/commands`, {
      token: ann,
      body: { command: "echo bg", background: true },
    });
    const bg = BackgroundCommandSchema.parse(await started.json());
    const events = await (
      await server.request("GET", `${base}/commands/${bg.id}/events`, { token: ann })
    ).text();
    expect(events).toMatch(/event: stdout[\s\S]*event: result\ndata: /);
    expect(events).not.toContain("event: exit");
    const last = JSON.parse(events.trim().split("\n").pop()!.slice("data: ".length)) as unknown;
    expect(BackgroundCommandSchema.parse(last)).toMatchObject({
      status: "completed",
      success: true,
      exitCode: 0,
      truncated: { stdout: false, stderr: false },
    });
    const sleeper = await startSleeper(base);
    await server.request("POST", `${base}/commands/${sleeper.id}/kill`, { token: ann });
    const killedEvents = await (
      await server.request("GET", `${base}/commands/${sleeper.id}/events`, { token: ann })
    ).text();
    expect(killedEvents).toMatch(/event: result\ndata: .*"status":"killed"/);

    // Foreground commands and cells stream too, ending with `result`.
    for (const [path, body] of [
      ["commands", { command: "echo streamed" }],
      ["run", { code: "print('streamed')\n6 * 7" }],
    ] as const) {
      const sse = await (
        await server.request("POST", `${base}/${path}`, {
          token: ann,
          body,
          headers: { accept: "text/event-stream" },
        })
      ).text();
      expect(sse).toMatch(/event: stdout[\s\S]*event: result\ndata: .*"status":"completed"/);
    }
    expect((await server.request("DELETE", base, { token: ann })).status).toBe(204);
  });

  it("kills and ends with no body, an empty body or {}, with or without a content type", async () => {
    const base = await newSession();
    const auth = { authorization: `Bearer ${ann}` };
    const bodies: [Record<string, string>, Buffer[]][] = [
      [{}, []],
      [{ "content-type": "application/json" }, []],
      [{ "content-type": "application/json", "content-length": "0" }, []],
      [{ "content-type": "application/json" }, [Buffer.from("{}")]],
      [{ "content-type": "text/plain", "content-length": "0" }, []],
    ];
    for (const [headers, chunks] of bodies) {
      const bg = await startSleeper(base);
      const kill = await rawRequest(
        "POST",
        `${base}/commands/${bg.id}/kill?signal=SIGKILL`,
        { ...auth, ...headers },
        chunks,
      );
      expect(kill.status, `${JSON.stringify(headers)}: ${kill.body}`).toBe(204);
    }
    // The signal as a body field; a wrong one is refused, naming the field.
    const sleeper = await startSleeper(base);
    const json = { ...auth, "content-type": "application/json" };
    const kill = (body: string) =>
      rawRequest("POST", `${base}/commands/${sleeper.id}/kill`, json, [Buffer.from(body)]);
    const wrong = await kill('{"signal": "SIGFOO"}');
    expect(wrong.status).toBe(400);
    expect(wrong.body).toMatch(/signal/);
    expect((await kill('{"signal": "SIGKILL"}')).status).toBe(204);
    const events = await (
      await server.request("GET", `${base}/commands/${sleeper.id}/events`, { token: ann })
    ).text();
    expect(events).toMatch(/event: result\ndata: .*"status":"killed".*"signal":"SIGKILL"/);
    // Executions: the owner's kill route and the admin's.
    for (const [path, token] of [
      ["/v1/executions/ID/kill", ann],
      ["/api/sandbox/kill/ID", server.adminToken],
    ] as const) {
      const run = (await (
        await server.request("POST", "/v1/executions", {
          token: ann,
          body: { language: "python", code: "import time\ntime.sleep(60)", wait: false },
        })
      ).json()) as { id: string };
      const kill = await rawRequest("POST", path.replace("ID", run.id), {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
      });
      expect(kill.status, `${path}: ${kill.body}`).toBe(200);
      expect(JSON.parse(kill.body)).toMatchObject({ success: true });
    }
    const end = await rawRequest("DELETE", base, { ...auth, "content-type": "application/json" });
    expect(end.status, end.body).toBe(204);
  });

  it("reports memory_limit for a cell and a command the session's cgroup OOM-killed", async () => {
    const base = await newSession({ limits: { memoryMb: 128 } });
    const bomb = "x = []\nwhile True: x.append(bytearray(8 << 20))";
    const cell = CellResultSchema.parse(
      await (
        await server.request("POST", `${base}/run`, {
          token: ann,
          body: { code: bomb, timeout: 60 },
        })
      ).json(),
    );
    expect(cell).toMatchObject({ status: "memory_limit", error: { name: "MemoryLimit" } });
    expect(cell.error?.value).toMatch(/128 MB/);
    const cmd = await command(base, { command: ["python3", "-c", bomb] });
    expect(cmd.status).toBe("memory_limit");
    // A fresh context answers the next cell.
    const after = CellResultSchema.parse(
      await (
        await server.request("POST", `${base}/run`, { token: ann, body: { code: "1 + 1" } })
      ).json(),
    );
    expect(after).toMatchObject({
      status: "completed",
      results: [{ data: { "text/plain": "2" } }],
    });
    expect((await server.request("DELETE", base, { token: ann })).status).toBe(204);
  });

  it("shows only the user's frames in tracebacks, never Warden's kernels", async () => {
    const base = await newSession();
    const run = async (code: string, language = "python") =>
      CellResultSchema.parse(
        await (
          await server.request("POST", `${base}/run`, { token: ann, body: { code, language } })
        ).json(),
      );
    const py = await run("def inner():\n    return 1 / 0\n\ninner()");
    expect(py.error?.name).toBe("ZeroDivisionError");
    // IPython's layout (`Cell In [N], line 4`) where it is installed, the built-in kernel's otherwise.
    expect(py.error?.traceback).toMatch(
      /(File "<cell \d+>"|Cell In ?\[\d+\]), line 4[\s\S]*line 2, in inner/,
    );
    expect(py.error?.traceback).toContain("return 1 / 0"); // the cell's own source line
    const syntax = await run("x = (");
    expect(syntax.error?.name).toBe("SyntaxError");
    const js = await run("function inner() { throw new Error('boom'); }\ninner()", "javascript");
    expect(js.error?.traceback).toMatch(/Error: boom\n\s+at inner \(<cell \d+>:1/);
    for (const r of [py, syntax, js]) {
      expect(r.status).toBe("failed");
      expect(r.error?.traceback).not.toMatch(/kernel\.(py|cjs)|\.warden|node:vm|node:internal/);
    }
    expect((await server.request("DELETE", base, { token: ann })).status).toBe(204);
  });

  it("lives past its first TTL + 60 s when extended, and never past maxSessionTimeout", async () => {
    const created = Date.now();
    const res = await server.request("POST", "/v1/sessions", { token: ann, body: {} }); // TTL 3 s
    const id = ((await res.json()) as { id: string }).id;
    const base = `/v1/sessions/${id}`;
    const extend = (timeout: number) =>
      server.request("POST", `${base}/extend`, { token: ann, body: { timeout } });
    const first = (await (await extend(40)).json()) as { expiresAt: string };
    expect(Date.parse(first.expiresAt)).toBeGreaterThan(created + 30_000);
    await new Promise((r) => setTimeout(r, 25_000));
    expect((await extend(60)).status).toBe(200);
    const tooLong = await extend(1000);
    expect(tooLong.status).toBe(400);
    expect(await tooLong.text()).toMatch(/maxSessionTimeout/);
    // Past the first TTL (3 s) + the old fixed slack (60 s): still running.
    await new Promise((r) => setTimeout(r, Math.max(0, created + 66_000 - Date.now())));
    expect((await command(base, { command: "echo alive" })).stdout).toBe("alive\n");
    expect((await server.request("DELETE", base, { token: ann })).status).toBe(204);
  }, 120_000);

  it("ends at its TTL when not extended", async () => {
    const res = await server.request("POST", "/v1/sessions", { token: ann, body: {} }); // TTL 3 s
    const base = `/v1/sessions/${((await res.json()) as { id: string }).id}`;
    const deadline = Date.now() + 30_000;
    while ((await server.request("GET", base, { token: ann })).status === 200) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect((await server.request("GET", base, { token: ann })).status).toBe(404);
  });
});
