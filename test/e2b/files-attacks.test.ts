/**
 * Hostile clients and sandboxes against the E2B adapter's files: links the
 * sandbox makes out of its workspace, `..` paths, uploads past maxFileBytes,
 * a watch client that never reads, and tokens of another sandbox. Each
 * attack fails, and Warden keeps answering with its memory bounded.
 */
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSandbox, PRELUDE, PRINT, TOKEN_SECRET, type TestSandbox } from "./files-sandbox.js";
import { lastJson, runScript, startE2bWarden, type E2bWarden } from "./sdk.js";

const MAX_FILE_BYTES = 1024 * 1024;
const MiB = 1024 * 1024;

/** Peak and current resident memory of a process (kB from /proc, as bytes). */
function memoryOf(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { peak: kb("VmHWM"), now: kb("VmRSS") };
}

describe("E2B files under attack", () => {
  let w: E2bWarden;
  let s: TestSandbox;
  let url: URL;

  const command = async (cmd: string, background = false) => {
    const res = await w.server.request("POST", `/v1/sessions/${s.sessionId}/commands`, {
      token: w.apiKey,
      body: { command: cmd, ...(background ? { background: true } : {}) },
    });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
    return res.json() as Promise<{ stdout?: string }>;
  };
  const alive = async () => expect((await w.server.request("GET", "/healthz")).status).toBe(200);
  const headers = (sb: { e2bId: string; token: string }) => ({
    "e2b-sandbox-id": sb.e2bId,
    "x-access-token": sb.token,
  });

  beforeAll(async () => {
    w = await startE2bWarden({
      e2b: { tokenSecret: TOKEN_SECRET },
      maxFileBytes: MAX_FILE_BYTES,
      sessions: { maxWatches: 1 },
    });
    s = await openSandbox(w);
    url = new URL(w.server.url);
  });
  afterAll(async () => {
    await w?.server.stop();
  });

  it("links the sandbox makes out of the workspace, and `..`, reach nothing outside it", async () => {
    await command(
      "ln -s /etc /workspace/etclink && ln -s /proc/1/root /workspace/rootlink && " +
        "ln -s /etc/passwd /workspace/pw && ln -s /tmp /workspace/tmplink && echo secret > /tmp/s",
    );
    const r = await runScript(
      w,
      `${PRELUDE}
      const tries = {
        readThroughDir: () => sbx.files.read("/home/user/etclink/passwd"),
        readLink: () => sbx.files.read("/home/user/pw"),
        readProcRoot: () => sbx.files.read("/home/user/rootlink/etc/passwd"),
        readTmp: () => sbx.files.read("/home/user/tmplink/s"),
        listEtc: () => sbx.files.list("/home/user/etclink"),
        listProcRoot: () => sbx.files.list("/home/user/rootlink/etc"),
        renameOut: () => sbx.files.rename("/home/user/tmplink/s", "/home/user/stolen"),
        renameIn: () => sbx.files.rename("/home/user/pw", "/home/user/tmplink/pw"),
        writeThrough: () => sbx.files.write("/home/user/tmplink/planted", "x"),
        statThrough: () => sbx.files.getInfo("/home/user/etclink/passwd"),
        removeThrough: () => sbx.files.remove("/home/user/tmplink/s"),
        mkdirThrough: () => sbx.files.makeDir("/home/user/tmplink/d"),
        watchThrough: () => sbx.files.watchDir("/home/user/etclink", () => {}),
        climb: () => sbx.files.read("/home/user/../../etc/passwd"),
        climbRelative: () => sbx.files.read("a/../../../etc/passwd"),
        climbList: () => sbx.files.list("/workspace/.."),
      };
      for (const [name, p] of Object.entries(tries)) out[name] = await errorOf(p());
      out.linkInfo = await sbx.files.getInfo("/home/user/pw");
      ${PRINT}`,
      { env: s.env },
    );
    const seen = lastJson<Record<string, { name: string; message: string } | null>>(r);
    const { linkInfo, ...refused } = seen;
    for (const [name, error] of Object.entries(refused))
      expect(error, name).toMatchObject({
        name: "InvalidArgumentError",
        message: expect.stringMatching(/leads out of \/home\/user|under \/home\/user/),
      });
    // The link itself is the sandbox's own file: it may be looked at, not followed.
    expect(linkInfo).toMatchObject({ type: "symlink", symlinkTarget: "/etc/passwd" });
    // Nothing moved or was planted behind the links.
    const left = await command("cat /tmp/s; ls /tmp; ls /workspace");
    expect(left.stdout).toContain("secret");
    expect(left.stdout).not.toMatch(/planted|stolen/);
    await alive();
  });

  /** Sends `total` bytes as an upload, as fast as Warden takes them; how many it took. */
  function upload(contentType: string, total: number, head = Buffer.alloc(0)) {
    return new Promise<{ sent: number; status: number | null; body: string }>((resolve) => {
      let sent = 0;
      let status: number | null = null;
      let body = "";
      const req = httpRequest({
        host: url.hostname,
        port: url.port,
        method: "POST",
        path: "/e2b/files?path=/home/user/huge.bin",
        headers: { ...headers(s), "content-type": contentType, "transfer-encoding": "chunked" },
      });
      const done = () => resolve({ sent, status, body });
      req.on("response", (res) => {
        status = res.statusCode ?? null;
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", done);
      });
      req.on("error", done);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = (): void => {
        if (sent === 0 && head.length > 0) {
          req.write(head);
        }
        while (sent < total && status === null) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        if (status === null) req.end();
      };
      pump();
    });
  }

  it("an upload past maxFileBytes is cut off as it arrives, multipart or raw", async () => {
    const pid = w.server.process.pid!;
    const before = memoryOf(pid);
    const total = 256 * MiB;
    const boundary = "xBOUNDARYx";
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="/home/user/huge.bin"\r\n` +
        "Content-Type: application/octet-stream\r\n\r\n",
    );
    const form = await upload(`multipart/form-data; boundary=${boundary}`, total, head);
    const raw = await upload("application/octet-stream", total);
    for (const r of [form, raw]) {
      // Refused long before the whole body went (socket buffers aside). The answer
      // names the limit; a client still writing when Warden closes the connection may
      // see the reset before it reads that answer (HTTP/1.1 early refusal), so on a
      // busy machine only the bound on what was sent is certain.
      if (r.status !== null) {
        expect(r.status, r.body).toBe(400);
        expect(JSON.parse(r.body), r.body).toMatchObject({
          code: 400,
          message: expect.stringContaining(`${MAX_FILE_BYTES} bytes per file (maxFileBytes)`),
        });
      }
      expect(r.sent).toBeLessThan(64 * MiB);
    }
    const after = memoryOf(pid);
    expect(after.peak - before.peak).toBeLessThan(64 * MiB);
    await alive();
  });

  /** A WatchDir stream whose client sends the request and then never reads. */
  function stalledWatch(path: string) {
    const message = Buffer.from(JSON.stringify({ path, recursive: false }));
    const envelope = Buffer.alloc(5 + message.length);
    envelope.writeUInt32BE(message.length, 1);
    message.copy(envelope, 5);
    const socket = connect(Number(url.port), url.hostname);
    socket.pause(); // reads nothing, ever
    const lines = [
      "POST /e2b/filesystem.Filesystem/WatchDir HTTP/1.1",
      `Host: ${url.host}`,
      "Content-Type: application/connect+json",
      `E2b-Sandbox-Id: ${s.e2bId}`,
      `X-Access-Token: ${s.token}`,
      `Content-Length: ${envelope.length}`,
    ];
    socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    socket.write(envelope);
    return socket;
  }

  it("a watch client that never reads is dropped and its watch released; memory stays bounded", async () => {
    await command("mkdir -p /workspace/w");
    const pid = w.server.process.pid!;
    const before = memoryOf(pid);
    const socket = stalledWatch("/home/user/w");
    const secondWatch = async () => {
      const r = await runScript(
        w,
        `${PRELUDE}
        out.error = await errorOf(sbx.files.watchDir("/home/user/w", () => {}).then((h) => h.stop()));
        ${PRINT}`,
        { env: s.env },
      );
      return lastJson<{ error: { message: string } | null }>(r).error;
    };
    try {
      await new Promise((r) => setTimeout(r, 1000));
      // It holds the session's one watch (sessions.maxWatches 1).
      expect(await secondWatch()).toMatchObject({ message: expect.stringContaining("maxWatches") });
      // Changes with long names, fast but under the agent's per-flush report bound.
      await command(
        `python3 -c "
import os, time
n = 'x' * 200
for i in range(120000):
    p = '/workspace/w/%s%d' % (n, i)
    open(p, 'w').close(); os.remove(p)
    if i % 100 == 0: time.sleep(0.1)
"`,
        true,
      );
      // sessions.maxWatches is 1: a second watch opens once the first is let go.
      let opened = false;
      for (let i = 0; i < 45 && !opened; i++) {
        await new Promise((r) => setTimeout(r, 2000));
        opened = (await secondWatch()) === null;
      }
      expect(opened).toBe(true);
      expect(memoryOf(pid).peak - before.peak).toBeLessThan(64 * MiB);
      await alive();
    } finally {
      socket.destroy();
      await command("pkill -f range || true");
    }
  }, 240_000);

  it("another sandbox's token, or none, opens nothing", async () => {
    const other = await openSandbox(w);
    await command("echo mine > /workspace/private.txt");
    const tries: [string, Record<string, string>][] = [
      ["other token", { "e2b-sandbox-id": s.e2bId, "x-access-token": other.token }],
      ["no token", { "e2b-sandbox-id": s.e2bId }],
      ["traffic header", { "e2b-sandbox-id": s.e2bId, "e2b-traffic-access-token": other.token }],
    ];
    for (const [name, h] of tries) {
      const read = await fetch(`${w.server.url}/e2b/files?path=/home/user/private.txt`, {
        headers: h,
      });
      expect(read.status, name).toBe(401);
      expect(await read.text(), name).not.toContain("mine");
      const stat = await fetch(`${w.server.url}/e2b/filesystem.Filesystem/Stat`, {
        method: "POST",
        headers: { ...h, "content-type": "application/json" },
        body: JSON.stringify({ path: "/home/user/private.txt" }),
      });
      expect(stat.status, name).toBe(401);
      expect(await stat.json(), name).toMatchObject({ code: "unauthenticated" });
    }
    await alive();
  });
});
