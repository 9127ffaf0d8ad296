/**
 * The agent is on the sandbox's side of the wall. User code in a session takes
 * it over (test/attacks/programs/hijack-agent.cjs: the agent's own debugger) and makes it
 * say anything; Warden must hold every limit itself and end only that session.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ArtifactCandidate } from "../../src/artifacts/collect.js";
import type { WardenError } from "../../src/errors.js";
import { silentLogger } from "../../src/audit/logger.js";
import { loadConfig } from "../../src/config/load.js";
import { SandboxHost } from "../../src/sandbox/host.js";
import { SessionManager } from "../../src/sessions/manager.js";
import { expectNothingLeft, registry } from "../helpers/sandbox.js";
import { answerNext, hijackedSession } from "../helpers/hijack.js";
import { eventually } from "../helpers/server.js";

const MiB = 1024 * 1024;
const config = loadConfig({
  env: {},
  overrides: {
    maxSessionsPerUser: 50,
    maxFileBytes: MiB,
    maxArtifactsPerExecution: 2,
    // A run directory and uid range of its own: the agent copied there is this
    // tree's, and no other Warden's janitor on this host takes our sandboxes for strays.
    runDir: "/run/warden-h-agent",
    "sandbox.uidBase": 760_000,
  },
});
const ARTIFACT_LIMITS = {
  maxBytes: MiB,
  maxCount: 2,
  maxTotalBytes: 2 * MiB,
  allowedTypes: ["text/plain"],
};
let host: SandboxHost;
let manager: SessionManager;
const audit: string[] = [];
const kept: ArtifactCandidate[] = [];
let bystander: string;

beforeAll(async () => {
  host = await SandboxHost.open({
    config: config.sandbox,
    runDir: config.runDir,
    privateFiles: registry.privateFiles(),
  });
  manager = new SessionManager(config, host, silentLogger, {
    audit: (e) => audit.push(`${e.event}: ${e.message}`),
    artifacts: {
      limits: () => ARTIFACT_LIMITS,
      keep: (candidates) => {
        kept.push(...candidates);
        return Promise.resolve({ artifacts: [], rejected: [] });
      },
    },
  });
  // Another tenant's session, which every attack must leave alone.
  bystander = (await manager.create("bob")).id;
});
afterAll(async () => {
  await manager?.closeAll();
  await host?.close();
});

/** A session whose agent runs `script` (JavaScript, inside the agent) once taken over. */
function hijacked(script: string, limits?: { outputBytes: number }) {
  return hijackedSession(manager, "eve", script, limits ? { limits } : {});
}

/** Script: answer the next request with `op` (its id in `id`) with `answer`, a JS statement. */
function onRequest(op: string, answer: string, match = `req.op === ${JSON.stringify(op)}`): string {
  return answerNext(match, answer);
}

/** Writes `count` lines of `bytes` bytes each (a JS statement), with backpressure. */
function flood(line: string, count: number): string {
  return `
    let i = 0;
    const pump = () => { while (i < ${count}) { i++; if (!process.stdout.write(${line})) return process.stdout.once("drain", pump); } };
    pump();`;
}

async function sessionEnds(id: string): Promise<string> {
  await eventually(async () => manager.list("eve", false).every((x) => x.id !== id), 30_000);
  const ended = audit.find((a) => a.startsWith(`session_ended: session ${id}`));
  return ended ?? "";
}

/** Peak RSS of this process (where Warden's session code runs) while `work` runs. */
async function peakRss(work: () => Promise<unknown>): Promise<number> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, process.memoryUsage().rss) - before;
}

async function bystanderServes(): Promise<void> {
  const r = await manager.command(bystander, "bob", { command: "echo still here" });
  expect(r.stdout).toBe("still here\n");
}

describe("agent messages are hostile input", () => {
  it("a forged exit for other calls ends that session, never resolving someone else's call", async () => {
    const s = await hijacked(`
      for (let i = 1; i < 200; i++)
        process.stdout.write(JSON.stringify({ id: i, type: "exit", exitCode: 0, signal: null,
          timedOut: false, truncated: false, durationMs: 1 }) + "\\n");`);
    const victim = manager.command(s.id, "eve", { command: "sleep 20; echo real" });
    victim.catch(() => undefined);
    await s.attack().catch(() => undefined);
    await expect(victim).rejects.toThrow(/agent broke the protocol/);
    expect(await sessionEnds(s.id)).toMatch(/not pending|not expected/);
    await expectNothingLeft(host, s.box); // the ended session left nothing behind
    await bystanderServes();
  });

  it("a 200 MB line without a newline is cut at the line limit; memory stays bounded", async () => {
    const s = await hijacked(flood(`"x".repeat(1 << 20)`, 200));
    const grown = await peakRss(async () => {
      await s.attack().catch(() => undefined);
      expect(await sessionEnds(s.id)).toMatch(/longer than/);
    });
    expect(grown).toBeLessThan(64 * MiB);
    await bystanderServes();
  });

  it("a line that is not JSON, or not in the schema, ends the session", async () => {
    const bad = await hijacked(`process.stdout.write("{not json\\n");`);
    await bad.attack().catch(() => undefined);
    expect(await sessionEnds(bad.id)).toMatch(/not JSON/);
    const odd = await hijacked(
      `process.stdout.write(JSON.stringify({ type: "ready", extra: 1 }) + "\\n");`,
    );
    await odd.attack().catch(() => undefined);
    expect(await sessionEnds(odd.id)).toMatch(/schema/);
    await bystanderServes();
  });

  it("a file read counts the bytes it receives, not the size the agent claims", async () => {
    // One line holding 3 MiB under a claimed size of 3 bytes (maxFileBytes is 1 MiB).
    const big = `Buffer.alloc(${3 * MiB}, "a").toString("base64")`;
    const line = await hijacked(
      onRequest("read", `write({ id, type: "file", content: ${big}, size: 3 });`),
    );
    await line.attack();
    await expect(manager.readFile(line.id, "eve", "script.js")).rejects.toThrow(/agent/);
    // The same in pieces that each fit a line.
    const piece = `Buffer.alloc(${512 * 1024}, "a").toString("base64")`;
    const pieces = await hijacked(
      onRequest(
        "read",
        `for (let n = 0; n < 6; n++) write({ id, type: "data", data: ${piece} });
         write({ id, type: "file", size: 3 });`,
      ),
    );
    await pieces.attack();
    await expect(manager.readFile(pieces.id, "eve", "script.js")).rejects.toThrow(
      /more than 1048576/,
    );
    expect(await sessionEnds(pieces.id)).toMatch(/maxFileBytes/);
    await bystanderServes();
  });

  it("artifact bytes are counted by Warden against maxArtifactSizeMB, whatever size is claimed", async () => {
    kept.length = 0;
    const big = `Buffer.alloc(${3 * MiB}, "a").toString("base64")`;
    const line = await hijacked(
      onRequest(
        "collect",
        `write({ id, type: "artifact", name: "big.txt", size: 1, content: ${big} });
         write({ id, type: "collected" });`,
      ),
    );
    await line.attack().catch(() => undefined);
    const piece = `Buffer.alloc(${512 * 1024}, "a").toString("base64")`;
    const pieces = await hijacked(
      onRequest(
        "collect",
        `write({ id, type: "artifact", name: "big.txt", size: 1, read: true });
         for (let n = 0; n < 6; n++) write({ id, type: "data", data: ${piece} });
         write({ id, type: "collected" });`,
      ),
    );
    await pieces.attack().catch(() => undefined);
    expect(await sessionEnds(line.id)).toMatch(/longer than/);
    expect(await sessionEnds(pieces.id)).toMatch(/maxArtifactSizeMB/);
    for (const c of kept) expect(c.content?.length ?? 0).toBeLessThanOrEqual(MiB);
    await bystanderServes();
  });
});

describe("output is bounded by Warden, not by the agent", () => {
  it("honours the session's limits.outputBytes for commands", async () => {
    const s = await manager.create("eve", { limits: { outputBytes: 65_536 } });
    const r = await manager.command(s.id, "eve", {
      command: "head -c 1000000 /dev/zero | tr '\\0' a",
    });
    expect(r).toMatchObject({ status: "output_limit", truncated: { stdout: true } });
    expect(r.stdout.length).toBe(65_536);
    await manager.destroy(s.id, "eve", "test");
  });

  it("a background command flooding through a hijacked agent is cut at outputBytes", async () => {
    const chunk = `JSON.stringify({ id, type: "stdout", data: "y".repeat(512 * 1024) }) + "\\n"`;
    // The interceptor answers the background command's id with 200 MB of stdout.
    const s = await hijacked(
      onRequest("exec", flood(chunk, 400), `req.op === "exec" && req.keepStdin`),
      { outputBytes: 65_536 },
    );
    await s.attack();
    let commandId = "";
    const grown = await peakRss(async () => {
      commandId = manager.startBackground(s.id, "eve", { command: "sleep 60" }).id;
      await eventually(async () => {
        const got = manager.getBackground(s.id, "eve", commandId);
        return got.truncated.stdout || got.status !== "running" || got.stdout.length > 32 * MiB;
      }, 30_000);
      await new Promise((r) => setTimeout(r, 2000)); // the rest of the flood arrives
    });
    const got = manager.getBackground(s.id, "eve", commandId);
    expect(got.stdout.length).toBeLessThanOrEqual(65_536);
    expect(got.truncated.stdout).toBe(true);
    expect(grown).toBeLessThan(64 * MiB);
    await bystanderServes();
    await manager.destroy(s.id, "eve", "test");
  });

  it("a cell's output and rich results are bounded by Warden", async () => {
    const s = await manager.create("eve", { limits: { outputBytes: 65_536 } });
    const printed = await manager.run(s.id, "eve", {
      code: "import sys\nfor _ in range(300): sys.stdout.write('p' * 100000)",
    });
    expect(printed.stdout.length).toBeLessThanOrEqual(65_536);
    const huge = await manager.run(s.id, "eve", { code: "'v' * 10_000_000" });
    const size = huge.results.reduce(
      (n, r) => n + Object.values(r.data).reduce((m, v) => m + v.length, 0),
      0,
    );
    expect(size).toBeLessThan(MiB);
    expect(huge.results[0]?.data["text/plain"]).toMatch(/too large/);
    await manager.destroy(s.id, "eve", "test");
  });

  it("forged rich results beyond the per-cell bound end the session", async () => {
    const piece = `"r".repeat(${512 * 1024})`;
    const s = await hijacked(
      onRequest(
        "run",
        `write({ id, type: "result", isMainResult: true });
         for (let n = 0; n < 80; n++) write({ id, type: "mime", mime: "text/plain", data: ${piece} });
         write({ id, type: "cell", results: [{ data: { "text/plain": "x".repeat(${8 * MiB}) }, isMainResult: true }],
           error: null, timedOut: false, durationMs: 1 });`,
      ),
    );
    await s.attack();
    await expect(manager.run(s.id, "eve", { code: "1" })).rejects.toThrow(/agent/);
    expect(await sessionEnds(s.id)).toMatch(/rich results/);
    await bystanderServes();
  });

  it("rich results with deeply nested metadata or a forged MIME type end the session", async () => {
    const deep = "[".repeat(400_000) + "]".repeat(400_000);
    for (const [answer, reason] of [
      // Written raw: 1 MiB of nesting parses, but JSON.stringify of it overflows the stack.
      [
        `process.stdout.write('{"id":' + id + ',"type":"result","isMainResult":false,"metadata":{"a":${deep}}}\\n');`,
        /metadata/,
      ],
      [
        `write({ id, type: "result", isMainResult: false }); write({ id, type: "mime", mime: "text/html; x=1", data: "<b>" });`,
        /mime/,
      ],
    ] as const) {
      const s = await hijacked(onRequest("run", answer));
      await s.attack();
      await expect(manager.run(s.id, "eve", { code: "1" })).rejects.toThrow(/agent/);
      expect(await sessionEnds(s.id)).toMatch(reason);
    }
    await bystanderServes();
  });

  it("a call's timeout is kept by Warden even when the agent's own timers are taken away", async () => {
    // The hijacked agent can no longer kill anything at a timeout: its timers never fire.
    const s = await hijacked(
      `globalThis.setTimeout = () => ({ ref() {}, unref() {}, hasRef: () => false });`,
    );
    await s.attack();
    const command = await manager.command(s.id, "eve", {
      command: "sleep 20; echo late",
      timeout: 1,
    });
    expect(command).toMatchObject({ status: "timeout", success: false, stdout: "" });
    // Ends with a value: its late answer is a result, then the cell's end.
    const cell = await manager.run(s.id, "eve", {
      code: "import time\ntime.sleep(8)\n42",
      timeout: 1,
    });
    expect(cell).toMatchObject({ status: "timeout", error: { name: "TimeoutError" } });
    // The agent's late answers for the calls Warden gave up on are not taken for lies.
    await new Promise((r) => setTimeout(r, 4000));
    const after = await manager.command(s.id, "eve", { command: "echo alive" });
    expect(after.stdout).toBe("alive\n");
    await bystanderServes();
    await manager.destroy(s.id, "eve", "test");
  });

  it("starts a queued cell's deadline when the cell starts, not when it was sent", async () => {
    const s = await manager.create("eve");
    const slow = manager.run(s.id, "eve", { code: "import time\ntime.sleep(8)", timeout: 20 });
    const queued = manager.run(s.id, "eve", { code: "1 + 1", timeout: 1 });
    expect(await slow).toMatchObject({ status: "completed" });
    expect(await queued).toMatchObject({
      status: "completed",
      results: [{ data: { "text/plain": "2" } }],
    });
    await manager.destroy(s.id, "eve", "test");
  });

  it("requests to an agent that stops reading are refused once 32 MiB wait, not queued without bound", async () => {
    // A second after the takeover the agent freezes: it reads nothing more, ever.
    const s = await hijacked(
      `setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0), 1000);`,
    );
    await s.attack();
    await new Promise((r) => setTimeout(r, 1500));
    const file = Buffer.alloc(900 * 1024, 0x61); // base64 of it is about 1.2 MiB a request
    const writes = Array.from({ length: 40 }, (_, i) =>
      manager.writeFile(s.id, "eve", `f${i}.txt`, file).then(
        () => "written",
        (error: WardenError) => error.code,
      ),
    );
    // The first ones wait for the agent; past the bound the rest are refused at once.
    const refused = await Promise.race([
      Promise.all(writes.slice(30)),
      new Promise((r) => setTimeout(() => r("still waiting"), 10_000)),
    ]);
    expect(refused).toEqual(Array.from({ length: 10 }, () => "UPSTREAM_UNAVAILABLE"));
    await manager.destroy(s.id, "eve", "test");
    expect(new Set(await Promise.all(writes))).not.toContain("written");
    await bystanderServes();
  });
});
