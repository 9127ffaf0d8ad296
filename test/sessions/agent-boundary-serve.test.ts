/**
 * The agent boundary through `warden serve`: a session's code takes over its
 * agent and floods Warden with a line that never ends, then with background
 * output. The service ends or bounds that session, keeps serving others, and
 * its resident memory stays within a bound far below what was sent.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, rssBytes, startServer, type TestServer } from "../helpers/server.js";

const MiB = 1024 * 1024;
const HIJACK = readFileSync(
  join(import.meta.dirname, "..", "attacks", "programs", "hijack-agent.cjs"),
);
let server: TestServer;

beforeAll(async () => {
  server = await startServer({
    // Its own run directory and uid range (see agent-boundary.test.ts).
    config: { runDir: "/run/warden-h-agent-serve", sandbox: { uidBase: 764_000 } },
  });
});
afterAll(async () => {
  await server?.stop();
});

/** Resident memory of the serve process, from the kernel. */
const rss = (): number => rssBytes(server.process.pid!);

async function session(body: unknown = {}): Promise<string> {
  const res = await server.request("POST", "/v1/sessions", { body });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function put(id: string, path: string, content: Buffer | string): Promise<void> {
  const res = await fetch(`${server.url}/v1/sessions/${id}/files/${path}`, {
    method: "PUT",
    headers: {
      authorization: `Bearer ${server.adminToken}`,
      "content-type": "application/octet-stream",
    },
    body: content,
  });
  expect(res.status).toBe(204);
}

async function command(id: string, body: unknown): Promise<Response> {
  return server.request("POST", `/v1/sessions/${id}/commands`, { body });
}

/** Peak RSS growth of the serve process while `work` runs. */
async function peakGrowth(work: () => Promise<void>): Promise<number> {
  const before = rss();
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, rss())), 20);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, rss()) - before;
}

async function serves(id: string): Promise<void> {
  const res = await command(id, { command: "echo still here" });
  expect(((await res.json()) as { stdout: string }).stdout).toBe("still here\n");
  expect((await server.request("GET", "/healthz")).status).toBe(200);
}

describe("warden serve against a hijacked agent", () => {
  it("a 300 MB line ends only that session; RSS stays bounded", async () => {
    const bystander = await session();
    const id = await session();
    await put(id, "hijack.cjs", HIJACK);
    await put(
      id,
      "script.js",
      `const s = "x".repeat(1 << 20); let i = 0;
       const pump = () => { while (i < 300) { i++; if (!process.stdout.write(s)) return process.stdout.once("drain", pump); } };
       pump();`,
    );
    const grown = await peakGrowth(async () => {
      await command(id, { command: "node hijack.cjs script.js" });
      await eventually(
        async () => (await server.request("GET", `/v1/sessions/${id}`)).status === 404,
        30_000,
      );
    });
    expect(grown).toBeLessThan(64 * MiB);
    await serves(bystander);
  });

  it("200 MB of forged background output keeps outputBytes; RSS stays bounded", async () => {
    const id = await session({ limits: { outputBytes: 65_536 } });
    await put(id, "hijack.cjs", HIJACK);
    await put(
      id,
      "script.js",
      `process.stdin.prependListener("data", (d) => {
         for (const line of String(d).split("\\n")) {
           let req; try { req = JSON.parse(line); } catch { continue; }
           if (req.op !== "exec" || !req.keepStdin) continue;
           const piece = JSON.stringify({ id: req.id, type: "stdout", data: "y".repeat(512 * 1024) }) + "\\n";
           let i = 0;
           const pump = () => { while (i < 400) { i++; if (!process.stdout.write(piece)) return process.stdout.once("drain", pump); } };
           pump();
         }
       });`,
    );
    await command(id, { command: "node hijack.cjs script.js" });
    let commandId = "";
    const grown = await peakGrowth(async () => {
      const started = await server.request("POST", `/v1/sessions/${id}/commands`, {
        body: { command: "sleep 60", background: true },
      });
      commandId = ((await started.json()) as { id: string }).id;
      await new Promise((r) => setTimeout(r, 4000)); // the flood arrives
    });
    const got = (await (
      await server.request("GET", `/v1/sessions/${id}/commands/${commandId}`)
    ).json()) as { stdout: string; truncated: { stdout: boolean } };
    expect(got.stdout.length).toBeLessThanOrEqual(65_536);
    expect(got.truncated.stdout).toBe(true);
    expect(grown).toBeLessThan(64 * MiB);
    await serves(id);
  });
});
