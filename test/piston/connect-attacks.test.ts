/**
 * Hostile clients of Piston's socket against a real `warden serve`: each is
 * refused or cut off at its bound, and Warden keeps answering.
 */
import { readFileSync } from "node:fs";
import { connect as tcp } from "node:net";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";
import { connect, lastExecution } from "./socket-client.js";

const MiB = 1024 * 1024;
let server: TestServer;

beforeAll(async () => {
  server = await startServer({
    config: {
      server: { bodyLimitBytes: 256 * 1024 },
      // Large enough that a run floods far past what a socket may hold unsent.
      defaults: { outputBytes: 64 * MiB },
    },
  });
});
afterAll(async () => {
  await server?.stop();
});

async function stillAnswers(): Promise<void> {
  const r = await server.request("GET", "/api/v2/runtimes");
  expect(r.status).toBe(200);
}

/** The server process's peak resident memory (VmHWM), in bytes. */
function peakRss(): number {
  const status = readFileSync(`/proc/${server.process.pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

const SLEEPER = {
  type: "init",
  language: "python",
  files: [{ content: "import time\nprint('up', flush=True)\ntime.sleep(120)\n" }],
};

describe("Piston socket attacks", () => {
  it("no key while anonymous is off: refused at the upgrade, before any socket", async () => {
    const refused = await connect(server.url).catch((e: { status?: number }) => e);
    expect(refused).toMatchObject({ status: 401 });
    const wrong = await connect(server.url, "not-a-key").catch((e: { status?: number }) => e);
    expect(wrong).toMatchObject({ status: 401 });
    // The refused upgrade's connection is closed by Warden, not left open.
    const { port } = new URL(server.url);
    const answer = await new Promise<string>((resolve) => {
      const socket = tcp(Number(port), "127.0.0.1", () =>
        socket.write(
          "GET /api/v2/connect HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        ),
      );
      let text = "";
      socket.on("data", (d) => (text += d.toString()));
      socket.on("end", () => resolve(text));
    });
    expect(answer).toMatch(/^HTTP\/1.1 401/);
    await stillAnswers();
  });

  it("flooding stdin past maxStdinBytes ends the run with an error (4002)", async () => {
    const c = await connect(server.url, server.adminToken);
    c.send(SLEEPER);
    await c.next((m) => m.type === "data");
    const piece = "x".repeat(64 * 1024);
    // 2 MiB against a 1 MiB budget; the program reads none of it.
    for (let i = 0; i < 32 && c.ws.readyState === WebSocket.OPEN; i++)
      c.send({ type: "data", stream: "stdin", data: piece });
    expect(await c.closed).toEqual({ code: 4002, reason: "Notified Error" });
    expect(c.messages.at(-1)).toEqual({
      type: "error",
      message: `stdin: more than ${MiB} bytes in total (maxStdinBytes)`,
    });
    await expect.poll(async () => (await lastExecution(server))?.status).toBe("killed");
    await stillAnswers();
  });

  it("a client that never reads a flood of output: the run is killed, the socket cut, memory bounded", async () => {
    const before = peakRss();
    const c = await connect(server.url, server.adminToken);
    c.send({
      type: "init",
      language: "python",
      files: [{ content: "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n" }],
    });
    await c.next((m) => m.type === "stage");
    // Stop reading: the kernel's buffers fill, then Warden's send queue.
    c.ws.pause();
    await expect
      .poll(async () => (await lastExecution(server))?.status, { timeout: 30_000 })
      .toBe("killed");
    c.ws.resume();
    // Cut off (no close frame could reach a client that reads nothing).
    expect((await c.closed).code).toBe(1006);
    // 64 MiB of output was allowed; what Warden held for this client stayed far below.
    expect(peakRss() - before).toBeLessThan(48 * MiB);
    await stillAnswers();
  });

  it("an oversized frame is refused by size (1009) before it is parsed", async () => {
    const c = await connect(server.url, server.adminToken);
    c.send({ type: "init", language: "python", files: [{ content: "#".repeat(300 * 1024) }] });
    expect((await c.closed).code).toBe(1009);
    await stillAnswers();
  });

  it("messages before init, a second init, invalid JSON, deep JSON, bad streams and signals", async () => {
    const early = await connect(server.url, server.adminToken);
    early.send({ type: "data", stream: "stdin", data: "x" });
    expect(await early.closed).toEqual({ code: 4003, reason: "Not yet Initialized" });

    const earlySignal = await connect(server.url, server.adminToken);
    earlySignal.send({ type: "signal", signal: "SIGKILL" });
    expect((await earlySignal.closed).code).toBe(4003);

    const twice = await connect(server.url, server.adminToken);
    twice.send(SLEEPER);
    twice.send(SLEEPER);
    expect(await twice.closed).toEqual({ code: 4000, reason: "Already Initialized" });

    const garbage = await connect(server.url, server.adminToken);
    garbage.send("{not json");
    expect(await garbage.closed).toEqual({ code: 4002, reason: "Notified Error" });
    expect(garbage.messages[0]).toMatchObject({
      type: "error",
      message: expect.stringMatching(/^message: not valid JSON/),
    });

    const deep = await connect(server.url, server.adminToken);
    deep.send(`{"type":"init","files":${"[".repeat(100_000)}${"]".repeat(100_000)}}`);
    expect((await deep.closed).code).toBe(4002);
    expect(deep.messages[0]!.message).toMatch(/nested deeper than/);

    const stdout = await connect(server.url, server.adminToken);
    stdout.send(SLEEPER);
    stdout.send({ type: "data", stream: "stdout", data: "x" });
    expect(await stdout.closed).toEqual({ code: 4004, reason: "Can only write to stdin" });

    const signal = await connect(server.url, server.adminToken);
    signal.send(SLEEPER);
    signal.send({ type: "signal", signal: "SIGNOPE" });
    expect(await signal.closed).toEqual({ code: 4005, reason: "Invalid Signal" });

    const silent = await connect(server.url, server.adminToken);
    expect(await silent.closed).toEqual({ code: 4001, reason: "Initialization Timeout" });
    // Every run those sockets started was killed with them: none is left running.
    await expect
      .poll(async () => {
        const r = (await (
          await server.request("GET", "/v1/executions?status=running,queued")
        ).json()) as {
          executions: unknown[];
        };
        return r.executions.length;
      })
      .toBe(0);
    await stillAnswers();
  });
});
