/**
 * Hostile clients and cells against the E2B code interpreter (/e2b/execute,
 * /e2b/contexts), as raw HTTP: a cell flooding output, a client that never
 * reads its answer, contexts past sessions.maxContexts, a result whose JSON
 * nests past any sane depth, and a token for another sandbox. Each must fail
 * while Warden stays up, bounded in memory. Real `warden serve`, real
 * sandboxes; sessions are made through Warden's own API and their E2B
 * access token is signed with the server's secret, as the control API does.
 */
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../helpers/server.js";
import { startE2bWarden, type E2bWarden } from "./sdk.js";

let w: E2bWarden;
const MiB = 1024 * 1024;

beforeAll(async () => {
  w = await startE2bWarden({
    defaultTimeout: 8,
    defaults: { outputBytes: 32 * MiB },
    sessions: { maxContexts: 2 },
    maxSessionsPerUser: 6,
  });
}, 60_000);
afterAll(async () => w?.server.stop());
const made: string[] = [];
afterEach(async () => {
  for (const id of made.splice(0))
    await w.server.request("DELETE", `/v1/sessions/${id}`, { token: w.apiKey });
});

interface Plane {
  sessionId: string;
  headers: Record<string, string>;
}

/** A session made through Warden's API, and the headers the SDK would send for it. */
async function sandbox(): Promise<Plane> {
  const res = await w.server.request("POST", "/v1/sessions", { token: w.apiKey, body: {} });
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as { id: string };
  made.push(id);
  const secret = readFileSync(join(w.server.dataDir, "e2b-token-secret"), "utf8").trim();
  const token = createHmac("sha256", Buffer.from(secret)).update(id).digest("base64url");
  return {
    sessionId: id,
    headers: {
      "content-type": "application/json",
      "e2b-sandbox-id": id.slice(5).toLowerCase(),
      "e2b-sandbox-port": "49999",
      "x-access-token": token,
    },
  };
}

const call = (p: Plane, method: string, path: string, body?: unknown): Promise<Response> =>
  fetch(`${w.server.url}/e2b${path}`, {
    method,
    headers: p.headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

/** Runs a cell and reads the whole NDJSON answer; every line must be JSON. */
async function execute(p: Plane, code: string): Promise<Record<string, unknown>[]> {
  const res = await call(p, "POST", "/execute", { code });
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(text.endsWith("\n")).toBe(true);
  return text
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const wardenRssBytes = (): number => {
  const status = readFileSync(`/proc/${w.server.process.pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
};

describe("output", () => {
  it("a cell flooding output is cut at the limit, and its stream ends with OutputLimit", async () => {
    const p = await sandbox();
    const before = wardenRssBytes();
    const lines = await execute(
      p,
      "import sys\nfor i in range(640):\n    sys.stdout.write('x' * 100_000 + '\\n')",
    );
    const stdout = lines.filter((l) => l.type === "stdout").map((l) => String(l.text));
    const bytes = stdout.reduce((n, t) => n + t.length, 0);
    expect(bytes).toBeLessThanOrEqual(32 * MiB);
    expect(bytes).toBeGreaterThan(MiB);
    expect(lines.find((l) => l.type === "error")).toMatchObject({ name: "OutputLimit" });
    expect(lines.at(-1)).toEqual({ type: "end_of_execution" });
    // 64 MB went out of the kernel; Warden held at most its 32 MiB cap of it, in a few copies.
    expect(wardenRssBytes() - before).toBeLessThan(200 * MiB);
    expect((await w.server.request("GET", "/healthz")).status).toBe(200);
  }, 120_000);

  it("a client that never reads is dropped, and its cell is interrupted", async () => {
    const p = await sandbox();
    await execute(p, "x = 41");
    const code =
      "import time\nfor i in range(400):\n    print('y' * 100_000)\n    time.sleep(0.005)\nx = 0";
    const body = JSON.stringify({ code });
    const socket = connect(Number(new URL(w.server.url).port), "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    socket.pause(); // never reads
    const head = Object.entries({ ...p.headers, "content-length": String(Buffer.byteLength(body)) })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("");
    socket.write(`POST /e2b/execute HTTP/1.1\r\nhost: 127.0.0.1\r\n${head}\r\n${body}`);
    await eventually(
      async () => w.server.logs.some((l) => l.includes("interpreter client dropped")),
      60_000,
    );
    // Dropped mid-cell: the cell was interrupted before its last line, so x kept its value.
    const closed = new Promise((r) => socket.once("close", r));
    socket.resume();
    await closed;
    const after = await execute(p, "x + 1");
    expect(after.find((l) => l.type === "result")).toMatchObject({ text: "42" });
    expect((await w.server.request("GET", "/healthz")).status).toBe(200);
  }, 120_000);

  it("a cell past the server's timeout ends with a TimeoutError line; its context survives", async () => {
    const p = await sandbox();
    await execute(p, "kept = 'yes'");
    const lines = await execute(p, "while True:\n    pass");
    expect(lines.find((l) => l.type === "error")).toMatchObject({ name: "TimeoutError" });
    expect(lines.at(-1)).toEqual({ type: "end_of_execution" });
    const after = await execute(p, "kept");
    expect(after.find((l) => l.type === "result")).toMatchObject({ text: "yes" });
  }, 120_000);

  it("a result whose JSON nests 100000 deep comes back as text, the stream intact", async () => {
    const p = await sandbox();
    const lines = await execute(
      p,
      "from IPython.display import display\nn = 100_000\ndisplay({'application/json': '[' * n + ']' * n, 'text/plain': 'deep'}, raw=True)\n'after'",
    );
    const results = lines.filter((l) => l.type === "result");
    expect(results[0]).toMatchObject({ text: "deep" });
    expect(String(results[0]!["application/json"]).length).toBe(200_000);
    expect(results[0]!.json).toBeUndefined();
    expect(results[1]).toMatchObject({ text: "after", is_main_result: true });
    expect(lines.at(-1)).toEqual({ type: "end_of_execution" });
  }, 120_000);
});

describe("contexts", () => {
  it("refuses a context past sessions.maxContexts, also when asked for all at once", async () => {
    const p = await sandbox();
    const made = await Promise.all(
      Array.from({ length: 5 }, () => call(p, "POST", "/contexts", { language: "python" })),
    );
    const ok = made.filter((r) => r.status === 200);
    const refused = made.filter((r) => r.status === 429);
    expect(ok).toHaveLength(2);
    expect(refused).toHaveLength(3);
    expect(await refused[0]!.text()).toContain("sessions.maxContexts");
    const listed = (await (await call(p, "GET", "/contexts")).json()) as { id: string }[];
    const first = ((await ok[0]!.json()) as { id: string }).id;
    expect(listed.map((c) => c.id)).toContain(first);
    expect((await call(p, "DELETE", `/contexts/${first}`)).status).toBe(204);
    expect((await call(p, "POST", "/contexts", {})).status).toBe(200);
  }, 120_000);
});

describe("tokens", () => {
  it("another sandbox's token, a forged one and none are refused on every route", async () => {
    const mine = await sandbox();
    const theirs = await sandbox();
    await execute(theirs, "secret = 'theirs'");
    const ctx = (await (await call(theirs, "POST", "/contexts", {})).json()) as { id: string };
    const wrong = {
      headers: { ...theirs.headers, "x-access-token": mine.headers["x-access-token"]! },
      sessionId: theirs.sessionId,
    };
    const forged = {
      headers: { ...theirs.headers, "x-access-token": "A".repeat(43) },
      sessionId: "",
    };
    const { "x-access-token": _, ...bare } = theirs.headers;
    const none = { headers: bare, sessionId: "" };
    for (const p of [wrong, forged, none]) {
      const answers = await Promise.all([
        call(p, "POST", "/execute", { code: "secret = 'overwritten'" }),
        call(p, "GET", "/contexts"),
        call(p, "POST", "/contexts", {}),
        call(p, "POST", `/contexts/${ctx.id}/restart`),
        call(p, "DELETE", `/contexts/${ctx.id}`),
      ]);
      expect(answers.map((r) => r.status)).toEqual([401, 401, 401, 401, 401]);
      for (const r of answers) expect(await r.text()).not.toContain("secret");
    }
    const still = await execute(theirs, "secret");
    expect(still.find((l) => l.type === "result")).toMatchObject({ text: "theirs" });
    const listed = (await (await call(theirs, "GET", "/contexts")).json()) as { id: string }[];
    expect(listed.map((c) => c.id)).toContain(ctx.id);
  }, 120_000);
});
