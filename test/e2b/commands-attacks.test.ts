/**
 * Hostile use of process.Process (src/http/e2b/process.ts) against a real
 * `warden serve`: a command flooding stdout, clients that never read their
 * streams, another session's pid or token, an oversized stdin. Each asserts
 * the attack failed and Warden is still up, its memory within a bound.
 */
import { readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lastJson, runScript, startE2bWarden, type E2bWarden } from "./sdk.js";
import { planeSandbox, type PlaneSandbox } from "./plane-session.js";

let w: E2bWarden;
let a: PlaneSandbox;
let b: PlaneSandbox;

beforeAll(async () => {
  w = await startE2bWarden();
  a = await planeSandbox(w);
  b = await planeSandbox(w);
});
afterAll(async () => {
  await w?.server.stop();
});

function rssBytes(): number {
  const status = readFileSync(`/proc/${w.server.process.pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function healthy(): Promise<void> {
  const res = await w.server.request("GET", "/healthz", { token: null });
  expect(res.status).toBe(200);
}

function frame(message: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(json.length, 1);
  return Buffer.concat([head, json]);
}

/** A Connect stream request on a raw socket; the caller decides whether it reads. */
async function rawStream(s: PlaneSandbox, method: string, message: unknown): Promise<Socket> {
  const { port } = new URL(w.server.url);
  const socket = netConnect(Number(port), "127.0.0.1");
  socket.on("error", () => undefined);
  await new Promise((r) => socket.once("connect", r));
  const body = frame(message);
  socket.write(
    `POST /e2b/process.Process/${method} HTTP/1.1\r\nhost: x\r\n` +
      `content-type: application/connect+json\r\nconnect-protocol-version: 1\r\n` +
      `e2b-sandbox-id: ${s.e2bId}\r\nx-access-token: ${s.token}\r\n` +
      `content-length: ${body.length}\r\n\r\n`,
  );
  socket.write(body);
  return socket;
}

/** Everything a socket sends until it closes or `ms` pass. */
function readFor(socket: Socket, ms: number): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    socket.on("data", (d: Buffer) => (got += d.toString("latin1")));
    const done = () => resolve(got);
    socket.once("close", done);
    setTimeout(done, ms);
  });
}

async function unary(s: PlaneSandbox, method: string, body: unknown, token = s.token) {
  const res = await fetch(`${w.server.url}/e2b/process.Process/${method}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "e2b-sandbox-id": s.e2bId,
      "x-access-token": token,
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("process.Process under attack", () => {
  it("a command flooding stdout: Warden keeps its cap, its memory bounded, the stream ends saying so", async () => {
    const before = rssBytes();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes())), 50);
    const r = await runScript(
      w,
      `${a.prelude}
let bytes = 0;
const e = await errorOf(sbx.commands.run("head -c 300000000 /dev/zero | tr '\\\\0' a", { timeoutMs: 0, onStdout: (d) => (bytes += d.length) }));
console.log(JSON.stringify({ e, bytes }));
`,
    );
    clearInterval(sampler);
    const out = lastJson<{ e: { name: string; message: string }; bytes: number }>(r);
    // 300 MB produced; the session's cap (1 MiB per stream) is what reaches the client.
    expect(out.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(out.bytes).toBeGreaterThan(0);
    expect(out.e.name).toBe("RateLimitError");
    expect(out.e.message).toMatch(/outputBytes/);
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
    await healthy();
  });

  it("clients that never read their streams: at most 16 per sandbox, memory bounded, slots come back", async () => {
    // Output starts after everyone attached, so every stream is owed it.
    const bg = await w.server.request("POST", `/v1/sessions/${a.sessionId}/commands`, {
      token: w.apiKey,
      body: {
        command: "sleep 3; head -c 3000000 /dev/zero | tr '\\0' a; sleep 60",
        background: true,
      },
    });
    expect(bg.status).toBe(202);
    const listed = await unary(a, "List", {});
    const pid = (listed.body.processes as { pid: number }[])[0]!.pid;
    const before = rssBytes();
    const sockets: Socket[] = [];
    for (let i = 0; i < 16; i++) {
      const s = await rawStream(a, "Connect", { process: { pid } });
      s.pause(); // never reads
      sockets.push(s);
    }
    await new Promise((r) => setTimeout(r, 500));
    const refused = await readFor(await rawStream(a, "Connect", { process: { pid } }), 3000);
    expect(refused).toMatch(/resource_exhausted/);
    expect(refused).toMatch(/at most 16 process streams/);
    let peak = rssBytes();
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 100));
      peak = Math.max(peak, rssBytes());
    }
    expect(peak - before).toBeLessThan(96 * 1024 * 1024);
    await healthy();
    for (const s of sockets) s.destroy();
    // The slots are given back when the clients go: a new stream starts.
    await new Promise((r) => setTimeout(r, 500));
    const again = await rawStream(a, "Connect", { process: { pid } });
    expect(await readFor(again, 1500)).toMatch(/"start":\{"pid":\d+\}/);
    again.destroy();
    expect(
      (await unary(a, "SendSignal", { process: { pid }, signal: "SIGNAL_SIGKILL" })).status,
    ).toBe(200);
  });

  it("another sandbox's token or pid reaches nothing", async () => {
    const started = await runScript(
      w,
      `${a.prelude}
const h = await sbx.commands.run("sleep 60", { background: true, timeoutMs: 0 });
console.log(JSON.stringify({ pid: h.pid }));
process.exit(0); // the handle's stream would keep the script alive
`,
    );
    const { pid } = lastJson<{ pid: number }>(started);
    // A's token naming B's sandbox, B's token naming A's: refused alike.
    for (const [s, token] of [
      [b, a.token],
      [a, b.token],
    ] as const) {
      const r = await unary(s, "SendSignal", { process: { pid }, signal: "SIGNAL_SIGKILL" }, token);
      expect(r.status).toBe(401);
      expect(r.body.code).toBe("unauthenticated");
    }
    // B's own token with A's pid: B has no such process.
    const cross = await unary(b, "SendSignal", { process: { pid }, signal: "SIGNAL_SIGKILL" });
    expect(cross).toMatchObject({ status: 404, body: { code: "not_found" } });
    const mine = await unary(a, "List", {});
    expect((mine.body.processes as { pid: number }[]).map((p) => p.pid)).toContain(pid);
    await unary(a, "SendSignal", { process: { pid }, signal: "SIGNAL_SIGKILL" });
    await healthy();
  });

  it("stdin larger than the limit, or not UTF-8, is refused naming why", async () => {
    const r = await runScript(
      w,
      `${a.prelude}
const cat = await sbx.commands.run("cat", { background: true, stdin: true, timeoutMs: 0 });
const big = await errorOf(cat.sendStdin("x".repeat(1536 * 1024)));
const binary = await errorOf(cat.sendStdin(new Uint8Array([0xff, 0xfe, 0x00])));
const noStdin = await sbx.commands.run("sleep 30", { background: true, timeoutMs: 0 });
const closed = await errorOf(noStdin.sendStdin("x"));
await cat.sendStdin("fine\\n");
await cat.closeStdin();
const end = await cat.wait();
await noStdin.kill();
console.log(JSON.stringify({ big, binary, closed, end: end.stdout }));
`,
    );
    const out = lastJson<Record<string, { name: string; message: string } | string>>(r);
    expect(out.big).toMatchObject({ name: "InvalidArgumentError" });
    expect((out.big as { message: string }).message).toMatch(/1048576 bytes/);
    expect(out.binary).toMatchObject({ name: "InvalidArgumentError" });
    expect((out.binary as { message: string }).message).toMatch(/UTF-8/);
    expect((out.closed as { message: string }).message).toMatch(/stdin not enabled/);
    expect(out.end).toBe("fine\n");
    await healthy();
  });
});
