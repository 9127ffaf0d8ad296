/**
 * Attacks on the output path of one execution, against a real `warden serve`:
 * output that JSON escaping would blow up six times (control bytes) or UTF-8
 * three times (invalid bytes), and stream clients that never read while a run
 * floods. The store and Warden's memory must stay within the multiples in
 * docs/boundary/output.md, the run must complete, Warden must keep answering.
 */
import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createKey,
  eventually,
  rssBytes,
  startServer,
  type TestServer,
} from "../helpers/server.js";

const MiB = 1024 * 1024;
let server: TestServer;
let key: string;

beforeAll(async () => {
  server = await startServer();
  key = await createKey(server, "flooder", "execute", "mallory");
});
afterAll(async () => {
  await server?.stop();
});

function storeBytes(): number {
  const file = join(server.dataDir, "warden.db");
  const size = (f: string): number => {
    try {
      return statSync(f).size;
    } catch {
      return 0;
    }
  };
  return size(file) + size(`${file}-wal`);
}

const rssOfServer = (field: "VmRSS" | "VmHWM"): number => rssBytes(server.process.pid!, field);

/** Queues a python program that writes `bytes` copies of `byte` to stdout and stderr. */
async function flood(byte: number, bytes: number, delaySeconds = 0): Promise<string> {
  const code = [
    "import sys, time",
    `time.sleep(${delaySeconds})`,
    `b = bytes([${byte}]) * ${bytes}`,
    "sys.stdout.buffer.write(b); sys.stdout.flush()",
    "sys.stderr.buffer.write(b); sys.stderr.flush()",
  ].join("\n");
  const res = await server.request("POST", "/v1/executions", {
    token: key,
    body: { language: "python", code, limits: { outputBytes: bytes }, timeout: 120, wait: false },
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

/** Waits for the run's final status (from its audit trail, with the admin key). */
async function finished(id: string): Promise<string> {
  let status = "";
  await eventually(async () => {
    const res = await server.request("GET", `/api/sandbox/logs/${id}`);
    const logs = (await res.json()) as { event: string }[];
    status =
      logs.map((l) => l.event).find((e) => !["queued", "started", "retried"].includes(e)) ?? "";
    return status !== "";
  }, 120_000);
  return status;
}

describe("output in the store", () => {
  it("keeps control-byte output at its own size (not 6× as JSON) and gives it back intact", async () => {
    const bytes = 8 * MiB;
    const before = storeBytes();
    const id = await flood(0x01, bytes);
    expect(await finished(id)).toBe("completed");
    // Row plus the WAL frames of its one transaction: at most 2 × the output, plus pages.
    expect(storeBytes() - before).toBeLessThan(2 * (2 * bytes) + 4 * MiB);
    const result = (await (
      await server.request("GET", `/v1/executions/${id}`, { token: key })
    ).json()) as { stdout: string; stderr: string };
    expect(result.stdout.length).toBe(bytes);
    expect(result.stderr).toBe("\x01".repeat(bytes));
  });

  it("keeps invalid UTF-8 at one byte a byte (not 3 as U+FFFD)", async () => {
    const bytes = 4 * MiB;
    const before = storeBytes();
    const id = await flood(0xff, bytes);
    expect(await finished(id)).toBe("completed");
    expect(storeBytes() - before).toBeLessThan(2 * (2 * bytes) + 4 * MiB);
    const result = (await (
      await server.request("GET", `/v1/executions/${id}`, { token: key })
    ).json()) as { stdout: string };
    expect(result.stdout).toBe("\uFFFD".repeat(bytes));
  });
});

/**
 * A raw socket client with a 4 KiB receive buffer that sends one request and
 * never reads: the TCP window closes and every byte for it stays with Warden.
 */
function stalledClient(path: string): { close: () => void } {
  const { port } = new URL(server.url);
  const script = [
    "import socket, sys, time",
    "s = socket.socket()",
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)",
    `s.connect(("127.0.0.1", ${port}))`,
    `s.sendall(b"GET ${path} HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer ${key}\\r\\nAccept: text/event-stream\\r\\n\\r\\n")`,
    "sys.stdin.read()",
  ].join("\n");
  const child = spawn("python3", ["-c", script], { stdio: ["pipe", "ignore", "inherit"] });
  return { close: () => child.kill("SIGKILL") };
}

describe("stream clients that do not read", () => {
  it("cost Warden one socket buffer each, and the run completes", async () => {
    const bytes = 16 * MiB;
    const id = await flood(0x01, bytes, 2);
    const clients = Array.from({ length: 4 }, () => stalledClient(`/v1/executions/${id}/events`));
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const baseline = rssOfServer("VmRSS");
      expect(await finished(id)).toBe("completed");
      // After the run: four more that ask for the whole stored output at once.
      const late = Array.from({ length: 4 }, () => stalledClient(`/v1/executions/${id}/events`));
      clients.push(...late);
      await new Promise((r) => setTimeout(r, 3000));
      // Unbounded, each client would hold ~6 × 32 MiB of escaped output: 1.5 GiB for eight.
      const grown = rssOfServer("VmHWM") - baseline;
      console.error(`stalled clients: peak RSS grew ${Math.round(grown / MiB)} MiB`);
      expect(grown).toBeLessThan(400 * MiB);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      for (const c of clients) c.close();
    }
  });
});

describe("readers of a finished run's stored output", () => {
  it("share a bounded budget: past it a read is refused at once, and the budget comes back", async () => {
    const id = await flood(0x01, 16 * MiB);
    expect(await finished(id)).toBe("completed");
    const baseline = rssOfServer("VmRSS");
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOfServer("VmRSS"))), 100);
    // Thirty readers of 32 MiB of output that never read: unbounded, each holds its own copy.
    const readers = Array.from({ length: 30 }, () => stalledClient(`/v1/executions/${id}`));
    try {
      await new Promise((r) => setTimeout(r, 4000));
      const refused = await server.request("GET", `/v1/executions/${id}`, { token: key });
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
        "SANDBOX_BUSY",
      );
      console.error(
        `stored-output readers: peak RSS grew ${Math.round((peak - baseline) / MiB)} MiB`,
      );
      expect(peak - baseline).toBeLessThan(400 * MiB);
    } finally {
      clearInterval(sampler);
      for (const r of readers) r.close();
    }
    // Readers gone: their share is given back.
    await eventually(async () => {
      const res = await server.request("GET", `/v1/executions/${id}`, { token: key });
      if (res.status !== 200) return false;
      return ((await res.json()) as { stdout: string }).stdout.length === 16 * MiB;
    }, 20_000);
  });
});

interface SseEvent {
  id?: string;
  event?: string;
  data: unknown;
}

function parseEvents(text: string): SseEvent[] {
  return text
    .split("\n\n")
    .filter((block) => /^event: /m.test(block))
    .map((block) => ({
      id: /^id: (.*)$/m.exec(block)?.[1],
      event: /^event: (.*)$/m.exec(block)?.[1],
      data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null") as unknown,
    }));
}

describe("event ids and Last-Event-ID", () => {
  it("gives every event an id and resumes after the one a client names", async () => {
    const res = await server.request("POST", "/v1/executions", {
      token: key,
      body: {
        language: "python",
        code: "import sys, time\nprint('one', flush=True)\ntime.sleep(1.5)\nprint('two', flush=True)\nprint('err', file=sys.stderr)",
        wait: false,
      },
    });
    const { id } = (await res.json()) as { id: string };
    const path = `/v1/executions/${id}/events`;
    // Live: read up to the first output event, then hang up.
    const first = await server.request("GET", path, { token: key });
    const reader = first.body!.getReader();
    let text = "";
    while (!parseEvents(text).some((e) => e.event === "stdout"))
      text += new TextDecoder().decode((await reader.read()).value as Uint8Array);
    await reader.cancel();
    const seen = parseEvents(text).find((e) => e.event === "stdout")!;
    // The id is the output position after the event (how the program's writes were cut may vary).
    const seenText = (seen.data as { data: string }).data;
    expect("one\n".startsWith(seenText)).toBe(true);
    expect(seen.id).toBe(`${seenText.length}-0`);

    // Reconnect while it runs: only what came after "one".
    const again = parseEvents(
      await (
        await server.request("GET", path, { token: key, headers: { "last-event-id": seen.id! } })
      ).text(),
    );
    expect(again.every((e) => e.id !== undefined)).toBe(true);
    const out = (name: string, events: SseEvent[]): string =>
      events
        .filter((e) => e.event === name)
        .map((e) => (e.data as { data: string }).data)
        .join("");
    expect(out("stdout", again)).toBe("one\ntwo\n".slice(seenText.length));
    expect(out("stderr", again)).toBe("err\n");
    expect(again.at(-1)).toMatchObject({
      event: "result",
      id: "8-4",
      data: { status: "completed" },
    });

    // After the run, from the store: the same ids, the same resume.
    const stored = parseEvents(
      await (
        await server.request("GET", path, { token: key, headers: { "last-event-id": "4-0" } })
      ).text(),
    );
    expect(out("stdout", stored)).toBe("two\n");
    expect(stored.at(-1)).toMatchObject({ event: "result", id: "8-4" });
    const all = parseEvents(await (await server.request("GET", path, { token: key })).text());
    expect(out("stdout", all)).toBe("one\ntwo\n");

    const bad = await server.request("GET", path, {
      token: key,
      headers: { "last-event-id": "garbage" },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(
      /^Last-Event-ID/,
    );
  });
});
