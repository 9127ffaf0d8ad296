/**
 * The Connect JSON server (src/http/e2b/connect.ts) against the real client
 * E2B's SDK uses (@connectrpc/connect-web with the SDK's own process.Process
 * descriptor), and against raw requests no client would send: envelopes split
 * across packets, two envelopes, a 4 GiB length, bad JSON, a compressed flag.
 */
import { request as httpRequest } from "node:http";
import { connect as netConnect } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileDesc, serviceDesc } from "@bufbuild/protobuf/codegenv2";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import Fastify, { type FastifyInstance } from "fastify";
import { z } from "zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acceptConnectStreams, connectService, type Method } from "../../src/http/e2b/connect.js";
import { PlaneError, PlaneTokens, type E2bDeps } from "../../src/http/e2b/plane.js";
import type { SessionManager } from "../../src/sessions/manager.js";

const root = join(import.meta.dirname, "..", "..");
// The SDK's embedded descriptor of envd's process.proto: the real messages, read from the SDK.
const sdk = readFileSync(join(root, "node_modules/e2b/dist/index.mjs"), "utf8");
const b64 = /const Process = [^\n]*?fileDesc\("([A-Za-z0-9+/=]+)"/.exec(sdk)![1]!;
const Process = serviceDesc(fileDesc(b64), 0);

const SESSION = "sess_01J9ZZZZZZZZZZZZZZZZZZZZZZ";
const E2B_ID = SESSION.slice(5).toLowerCase();
const tokens = new PlaneTokens(Buffer.from("x".repeat(40)));
const TOKEN = tokens.tokenFor(SESSION);

/** What the fake handlers saw. */
const seen = { aborted: 0, started: 0, sentBytes: 0 };
let hold: () => void = () => undefined;

const methods: Record<string, Method> = {
  List: {
    kind: "unary",
    input: z.object({}).passthrough(),
    handle: async () => ({ processes: [{ config: { cmd: "sleep", args: ["1"] }, pid: 1000 }] }),
  },
  SendSignal: {
    kind: "unary",
    input: z.object({ process: z.object({ pid: z.number() }), signal: z.string().optional() }),
    handle: async (_c, req: { process: { pid: number } }) => {
      throw new PlaneError("not_found", `process with pid ${req.process.pid} not found`, 404);
    },
  },
  Start: {
    kind: "stream",
    input: z.object({ process: z.object({ cmd: z.string(), args: z.array(z.string()) }) }),
    keepalive: { event: { keepalive: {} } },
    async handle(_c, req: { process: { args: string[] } }, send, ctx) {
      seen.started++;
      await send({ event: { start: { pid: 1000 } } });
      const arg = req.process.args.join(" ");
      if (arg === "fail") throw new PlaneError("resource_exhausted", "at most 8 running", 429);
      if (arg === "wait" || arg === "forever") {
        // Until the client goes away (or, for "forever", never on its own).
        await new Promise<void>((resolve) => {
          hold = resolve;
          ctx.signal.addEventListener("abort", () => {
            seen.aborted++;
            if (arg === "wait") resolve();
          });
        });
        return;
      }
      if (arg === "flood") {
        const chunk = {
          event: { data: { stdout: Buffer.alloc(64 * 1024, 97).toString("base64") } },
        };
        while (!ctx.signal.aborted && seen.sentBytes < 256 * 1024 * 1024) {
          await send(chunk);
          seen.sentBytes += 64 * 1024;
        }
        return;
      }
      await send({ event: { data: { stdout: Buffer.from("hi\n").toString("base64") } } });
      await send({ event: { end: { exitCode: 0, exited: true, status: "exit status 0" } } });
    },
  },
};

let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  // Keep-alive connections of the clients would hold close() otherwise.
  app = Fastify({ bodyLimit: 64 * 1024, forceCloseConnections: true });
  const sessions = { get: () => ({ userId: "u" }) } as unknown as SessionManager;
  const sandboxes = { policy: () => "off" as const };
  const deps = { sessions, tokens, config: {}, sandboxes } as unknown as E2bDeps;
  await app.register(
    async (a) => {
      acceptConnectStreams(a);
      connectService(a, deps, "process.Process", methods);
    },
    { prefix: "/e2b" },
  );
  base = `${await app.listen({ host: "127.0.0.1", port: 0 })}/e2b`;
});
afterAll(async () => {
  await app.close();
});

function client(headers: Record<string, string> = {}) {
  const transport = createConnectTransport({
    baseUrl: base,
    useBinaryFormat: false,
    fetch: (url, init) => {
      const h = new Headers(init?.headers);
      h.set("E2b-Sandbox-Id", E2B_ID);
      h.set("X-Access-Token", TOKEN);
      for (const [k, v] of Object.entries(headers)) h.set(k, v);
      return fetch(url, { ...init, headers: h });
    },
  });
  return createClient(Process, transport) as unknown as ProcessClient;
}

/** The part of the client these tests call (the descriptor is read at run time, so untyped). */
interface ProcessEventMsg {
  event?: {
    event:
      | { case: "data"; value: { output: { value?: Uint8Array } } }
      | { case: "start" | "end" | "keepalive" | undefined; value?: unknown };
  };
}
interface ProcessClient {
  list(req: object): Promise<{ processes: { pid: number; config?: { args: string[] } }[] }>;
  sendSignal(req: object): Promise<unknown>;
  start(req: object, options?: { signal?: AbortSignal }): AsyncIterable<ProcessEventMsg>;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function errorOf(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("expected an error");
}

describe("the real Connect client", () => {
  it("unary: answer and error (status and JSON the client parses)", async () => {
    const list = await client().list({});
    expect(list.processes[0]?.pid).toBe(1000);
    expect(list.processes[0]?.config?.args).toEqual(["1"]);
    const e = await errorOf(
      client().sendSignal({ process: { selector: { case: "pid", value: 7 } } }),
    );
    expect(e.code).toBe(Code.NotFound);
    expect(e.rawMessage).toBe("process with pid 7 not found");
  });

  it("stream: events, bytes as base64, end-stream", async () => {
    const events = await collect(client().start({ process: { cmd: "x", args: ["ok"] } }));
    expect(events.map((e) => e.event?.event.case)).toEqual(["start", "data", "end"]);
    const data = events[1]!.event!.event;
    expect(data.case === "data" && Buffer.from(data.value.output.value!).toString()).toBe("hi\n");
  });

  it("stream errors travel in the end-stream envelope with their message", async () => {
    const e = await errorOf(collect(client().start({ process: { cmd: "x", args: ["fail"] } })));
    expect(e.code).toBe(Code.ResourceExhausted);
    expect(e.rawMessage).toBe("at most 8 running");
    // Refused before the handler ran: still the message, not "HTTP 401".
    const bad = await errorOf(
      collect(client({ "X-Access-Token": "nope" }).start({ process: { cmd: "x", args: [] } })),
    );
    expect(bad.code).toBe(Code.Unauthenticated);
    expect(bad.rawMessage).toMatch(/access token/);
  });

  it("keepalive pings in silences, and the handler's signal aborts when the client goes away", async () => {
    const controller = new AbortController();
    const events: string[] = [];
    const before = seen.aborted;
    const done = (async () => {
      const stream = client({ "Keepalive-Ping-Interval": "1" }).start(
        { process: { cmd: "x", args: ["wait"] } },
        { signal: controller.signal },
      );
      for await (const e of stream) {
        events.push(e.event?.event.case ?? "?");
        if (events.filter((x) => x === "keepalive").length === 2) controller.abort();
      }
    })();
    await done.catch(() => undefined);
    expect(events[0]).toBe("start");
    expect(events.slice(1, 3)).toEqual(["keepalive", "keepalive"]);
    await until(() => seen.aborted > before);
  });
});

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Answer {
  status: number;
  type: string;
  body: Buffer;
}

/** A raw POST whose body is written in the given pieces, `gapMs` apart. */
function post(
  path: string,
  pieces: Buffer[],
  headers: Record<string, string> = {},
  gapMs = 0,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const length = pieces.reduce((n, p) => n + p.length, 0);
    const req = httpRequest(
      `${base}/process.Process/${path}`,
      {
        method: "POST",
        headers: {
          "content-type": "application/connect+json",
          "content-length": String(length),
          "e2b-sandbox-id": E2B_ID,
          "x-access-token": TOKEN,
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers["content-type"]),
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on("error", reject);
    void (async () => {
      for (const p of pieces) {
        req.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
      req.end();
    })();
  });
}

function frame(flags: number, json: string, length = Buffer.byteLength(json)): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(length, 1);
  return Buffer.concat([head, Buffer.from(json)]);
}

/** The envelopes of a stream answer. */
function frames(body: Buffer): { flags: number; msg: unknown }[] {
  const out = [];
  for (let at = 0; at < body.length;) {
    const n = body.readUInt32BE(at + 1);
    out.push({ flags: body[at]!, msg: JSON.parse(body.subarray(at + 5, at + 5 + n).toString()) });
    at += 5 + n;
  }
  return out;
}

const bodyOf = (a: Answer) => JSON.parse(a.body.toString()) as { code: string; message: string };

const START = JSON.stringify({ process: { cmd: "x", args: ["ok"] } });

/** A refused stream: a 200 with only an end-stream envelope carrying the error. */
function refusal(a: Answer): { code: string; message: string } {
  expect(a.status).toBe(200);
  expect(a.type).toBe("application/connect+json");
  const f = frames(a.body);
  expect(f).toHaveLength(1);
  expect(f[0]!.flags).toBe(2);
  return (f[0]!.msg as { error: { code: string; message: string } }).error;
}

describe("raw requests", () => {
  it("an envelope split across packets is read whole", async () => {
    const whole = frame(0, START);
    const a = await post(
      "Start",
      [whole.subarray(0, 2), whole.subarray(2, 9), whole.subarray(9)],
      {},
      30,
    );
    const f = frames(a.body);
    expect(f.map((x) => x.flags)).toEqual([0, 0, 0, 2]);
    expect(f.at(-1)!.msg).toEqual({});
  });

  it("refuses two envelopes, a 4 GiB length, a truncated one, bad JSON, compression, none", async () => {
    const started = seen.started;
    const cases: [Buffer[], RegExp][] = [
      [[frame(0, START), frame(0, START)], /exactly one envelope/],
      [[frame(0, START, 0xffffffff)], /at most 1048576 bytes/],
      [[frame(0, START, Buffer.byteLength(START) + 100)], /truncated/],
      [[frame(0, "{not json")], /not valid JSON/],
      [[frame(1, START)], /compression/],
      [[Buffer.from([0, 0])], /no envelope/],
      [[], /no envelope/],
    ];
    for (const [pieces, message] of cases) {
      const e = refusal(await post("Start", pieces));
      expect(e.code).toBe("invalid_argument");
      expect(e.message).toMatch(message);
    }
    expect(seen.started).toBe(started);
  });

  it("a body over the envelope limit is refused naming it", async () => {
    const big = frame(
      0,
      JSON.stringify({ process: { cmd: "x".repeat(2 * 1024 * 1024), args: [] } }),
    );
    const e = refusal(await post("Start", [big]));
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toMatch(/1048576 bytes/);
  });

  it("another protocol version or a compressed unary body is refused", async () => {
    const v2 = refusal(await post("Start", [frame(0, START)], { "connect-protocol-version": "2" }));
    expect(v2.message).toMatch(/connect-protocol-version/);
    const gz = await post("List", [Buffer.from("{}")], {
      "content-type": "application/json",
      "content-encoding": "gzip",
    });
    expect(gz.status).toBe(501);
    expect(JSON.parse(gz.body.toString())).toMatchObject({ code: "unimplemented" });
  });

  it("unary errors are JSON with Connect's status: bad JSON, too large, wrong type", async () => {
    const json = { "content-type": "application/json" };
    const bad = await post("List", [Buffer.from("{nope")], json);
    expect(bad.status).toBe(400);
    expect(bad.type).toMatch(/^application\/json/);
    expect(bodyOf(bad).code).toBe("invalid_argument");
    const big = await post("List", [Buffer.from(`{"a":"${"x".repeat(70_000)}"}`)], json);
    expect(big.status).toBe(400);
    expect(bodyOf(big).message).toMatch(/65536 bytes/);
    const wrong = await post("List", [frame(0, "{}")]);
    expect(wrong.status).toBe(415);
    expect(bodyOf(wrong).message).toMatch(/application\/json/);
  });

  it("a deadline ends a stream whose handler does not, with deadline_exceeded", async () => {
    const before = seen.aborted;
    const forever = frame(0, JSON.stringify({ process: { cmd: "x", args: ["forever"] } }));
    const a = await post("Start", [forever], { "connect-timeout-ms": "200" });
    const f = frames(a.body);
    expect(f[0]!.msg).toEqual({ event: { start: { pid: 1000 } } });
    expect(f.at(-1)).toEqual({
      flags: 2,
      msg: { error: { code: "deadline_exceeded", message: "deadline of 200 ms passed" } },
    });
    expect(seen.aborted).toBe(before + 1);
    hold();
  });

  it("a client that reads nothing holds a bounded amount, and its going away stops the handler", async () => {
    const socket = netConnect(Number(new URL(base).port), "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const body = frame(0, JSON.stringify({ process: { cmd: "x", args: ["flood"] } }));
    socket.write(
      `POST /e2b/process.Process/Start HTTP/1.1\r\nhost: x\r\ncontent-type: application/connect+json\r\n` +
        `e2b-sandbox-id: ${E2B_ID}\r\nx-access-token: ${TOKEN}\r\ncontent-length: ${body.length}\r\n\r\n`,
    );
    socket.write(body);
    socket.pause(); // reads nothing
    seen.sentBytes = 0;
    await new Promise((r) => setTimeout(r, 1500));
    // What send() accepted: our high-water mark plus the kernel's socket buffers, not 256 MiB.
    expect(seen.sentBytes).toBeGreaterThan(0);
    expect(seen.sentBytes).toBeLessThan(32 * 1024 * 1024);
    const before = seen.aborted;
    const stuck = seen.sentBytes;
    socket.destroy();
    await new Promise((r) => setTimeout(r, 300));
    expect(seen.sentBytes - stuck).toBeLessThan(4 * 1024 * 1024);
    expect(seen.aborted).toBe(before); // the flood handler checks the signal itself
  });
});
