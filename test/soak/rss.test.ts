/**
 * Soak: a real `warden serve` under a mix of hostile load for a bounded time
 * (SOAK_SECONDS, default 90): executions with output past their limit, SSE
 * streams opened and never read, floods of bad-key requests, bad bodies.
 * Its resident memory (VmRSS from /proc/PID/status, sampled every 500 ms)
 * must stay under RSS_BOUND_MIB, the bound docs/boundary/http.md states.
 */
import { Agent, request as httpRequest } from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createKey, rssBytes, startServer, type TestServer } from "../helpers/server.js";
import { rawConnect, type RawClient } from "../helpers/raw-http.js";

const SOAK_MS = Number(process.env.SOAK_SECONDS ?? 90) * 1000;
/** See docs/boundary/http.md for how this was measured. */
const RSS_BOUND_MIB = 450;

let server: TestServer;
let key: string;
let floodKey: string;

beforeAll(async () => {
  server = await startServer();
  key = await createKey(server, "soak", "execute", "soak");
  floodKey = await createKey(server, "soak-flood", "execute", "soak-flood");
});
afterAll(async () => {
  await server?.stop();
});

const rssMib = (pid: number): number => rssBytes(pid) / (1024 * 1024);

const until = (deadline: number) => Date.now() < deadline;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Executions whose output runs past the 1 MiB limit (stdout and stderr), one after another. */
async function bigOutput(deadline: number): Promise<number> {
  let n = 0;
  const code =
    "import sys\nfor i in range(40):\n    sys.stdout.write('\\x1b\\x00' * 50000)\n    sys.stderr.write('y' * 100000)";
  while (until(deadline)) {
    const res = await server.request("POST", "/v1/executions", {
      token: key,
      body: { language: "python", code },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    n++;
  }
  return n;
}

/** SSE streams on running executions that the client never reads. */
async function unreadStreams(deadline: number, held: RawClient[]): Promise<number> {
  let n = 0;
  const code =
    "import sys, time\nfor i in range(100):\n    print('z' * 20000, flush=True)\n    time.sleep(0.05)";
  while (until(deadline)) {
    const res = await server.request("POST", "/v1/executions", {
      token: key,
      body: { language: "python", code, wait: false },
    });
    const { id } = (await res.json()) as { id: string };
    const c = await rawConnect(server.url);
    c.socket.pause(); // never read: the kernel buffers fill, then Warden's side must cope
    c.write(
      `GET /v1/executions/${id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nAccept: text/event-stream\r\n\r\n`,
    );
    held.push(c);
    // Keep at most 20 open; drop the oldest, as a client that gave up would.
    if (held.length > 20) held.shift()!.close();
    n++;
    await pause(1000);
  }
  return n;
}

/**
 * Bad keys and bad bodies, as fast as one client can, from 127.0.0.2: its
 * rate limits are its own, so the runs above (from 127.0.0.1) still get in.
 */
async function refusals(deadline: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8, localAddress: "127.0.0.2" });
  const bodies = ["[".repeat(100_000), '{"language":', "\u0000\u0001", JSON.stringify({ x: 1 })];
  let n = 0;
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const bad = i % 2 === 0;
      const req = httpRequest(`${server.url}/v1/executions`, {
        method: "POST",
        agent,
        headers: {
          authorization: `Bearer ${bad ? `nope-${i}` : floodKey}`,
          "content-type": "application/json",
        },
      });
      req.on("response", (res) => {
        res.resume();
        res.on("end", () => resolve());
      });
      req.on("error", () => resolve());
      req.end(bodies[i % bodies.length]);
    });
  while (until(deadline)) {
    await Promise.all(Array.from({ length: 20 }, (_, j) => one(n + j)));
    n += 20;
  }
  agent.destroy();
  return n;
}

it(`keeps Warden's RSS under ${RSS_BOUND_MIB} MiB through ${SOAK_MS / 1000} s of hostile load`, async () => {
  const pid = server.process.pid!;
  const samples: number[] = [rssMib(pid)];
  const deadline = Date.now() + SOAK_MS;
  const sampler = setInterval(() => samples.push(rssMib(pid)), 500);
  const held: RawClient[] = [];
  try {
    const [executions, streams, refused] = await Promise.all([
      bigOutput(deadline),
      unreadStreams(deadline, held),
      refusals(deadline),
    ]);
    const peak = Math.max(...samples);
    console.error(
      `soak: ${executions} big-output runs, ${streams} unread streams, ${refused} refused requests; ` +
        `RSS start ${samples[0]!.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB, end ${samples.at(-1)!.toFixed(0)} MiB; ` +
        `every 10 s: ${samples
          .filter((_, i) => i % 20 === 0)
          .map((m) => m.toFixed(0))
          .join(" ")}`,
    );
    expect(executions).toBeGreaterThan(0);
    expect(peak).toBeLessThan(RSS_BOUND_MIB);
  } finally {
    clearInterval(sampler);
    for (const c of held) c.close();
  }
  expect(server.process.exitCode).toBeNull();
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
}, 240_000);
