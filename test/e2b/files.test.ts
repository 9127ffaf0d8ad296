/**
 * E2B's `sandbox.files` against Warden, driven by the pinned SDK in a child
 * process: envd's filesystem service and /files, over a real session.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSandbox, PRELUDE, PRINT, TOKEN_SECRET, type TestSandbox } from "./files-sandbox.js";
import { lastJson, runScript, startE2bWarden, type E2bWarden } from "./sdk.js";

const MAX_FILE_BYTES = 256 * 1024;

describe("E2B files", () => {
  let w: E2bWarden;
  let s: TestSandbox;

  beforeAll(async () => {
    w = await startE2bWarden({
      e2b: { tokenSecret: TOKEN_SECRET },
      maxFileBytes: MAX_FILE_BYTES,
    });
    s = await openSandbox(w);
  });
  afterAll(async () => {
    await w?.server.stop();
  });

  it("writes, reads, lists, makes, renames and removes as an E2B script expects", async () => {
    const r = await runScript(
      w,
      `${PRELUDE}
      const bytes = new Uint8Array(256).map((_, i) => i);
      out.written = await sbx.files.write("/home/user/notes/a.txt", "hello\\n");
      await sbx.files.write("/home/user/bin.dat", bytes);
      await sbx.files.write("rel.dat", bytes.buffer);
      out.text = await sbx.files.read("/home/user/notes/a.txt");
      out.bytes = Array.from(await sbx.files.read("/home/user/bin.dat", { format: "bytes" }));
      out.rel = Array.from(await sbx.files.read("/home/user/rel.dat", { format: "bytes" })).length;
      out.many = await sbx.files.write(
        Array.from({ length: 5 }, (_, i) => ({ path: "/home/user/many/f" + i + ".txt", data: "n" + i })),
      );
      out.manyBack = await sbx.files.read("/home/user/many/f3.txt");
      out.top = (await sbx.files.list("/home/user")).map((e) => e.name + ":" + e.type).sort();
      out.deep = (await sbx.files.list("/home/user", { depth: 2 })).map((e) => e.path).sort();
      out.madeFirst = await sbx.files.makeDir("/home/user/d/e");
      out.madeAgain = await sbx.files.makeDir("/home/user/d/e");
      out.exists = await sbx.files.exists("/home/user/notes/a.txt");
      out.existsNot = await sbx.files.exists("/home/user/notes/none.txt");
      out.renamed = await sbx.files.rename("/home/user/notes/a.txt", "/home/user/moved/b.txt");
      out.afterRename = await sbx.files.exists("/home/user/notes/a.txt");
      out.info = await sbx.files.getInfo("/home/user/moved/b.txt");
      await sbx.files.remove("/home/user/many");
      await sbx.files.remove("/home/user/never-was");
      out.removed = await sbx.files.exists("/home/user/many");
      ${PRINT}`,
      { env: s.env },
    );
    const seen = lastJson<Record<string, unknown>>(r);
    expect(seen.written).toEqual({ name: "a.txt", type: "file", path: "/home/user/notes/a.txt" });
    expect(seen.text).toBe("hello\n");
    expect(seen.bytes).toEqual(Array.from({ length: 256 }, (_, i) => i));
    expect(seen.rel).toBe(256);
    expect(seen.many).toHaveLength(5);
    expect(seen.manyBack).toBe("n3");
    expect(seen.top).toEqual(
      expect.arrayContaining(["bin.dat:file", "many:dir", "notes:dir", "rel.dat:file"]),
    );
    expect(seen.deep).toEqual(
      expect.arrayContaining(["/home/user/many/f0.txt", "/home/user/notes/a.txt"]),
    );
    expect(seen.madeFirst).toBe(true);
    expect(seen.madeAgain).toBe(false);
    expect(seen.exists).toBe(true);
    expect(seen.existsNot).toBe(false);
    expect(seen.renamed).toMatchObject({
      name: "b.txt",
      type: "file",
      path: "/home/user/moved/b.txt",
    });
    expect(seen.afterRename).toBe(false);
    expect(seen.info).toMatchObject({
      name: "b.txt",
      type: "file",
      size: 6,
      mode: 0o644,
      permissions: "-rw-r--r--",
      owner: "user",
    });
    expect(seen.removed).toBe(false);
  });

  it("answers missing files, paths outside /home/user and oversized files with the SDK's errors", async () => {
    const r = await runScript(
      w,
      `${PRELUDE}
      out.missing = await errorOf(sbx.files.read("/home/user/missing.txt"));
      out.passwd = await errorOf(sbx.files.read("/etc/passwd"));
      out.listEtc = await errorOf(sbx.files.list("/etc"));
      out.climb = await errorOf(sbx.files.write("/home/user/../../etc/x", "x"));
      out.big = await errorOf(sbx.files.write("/home/user/big.bin", new Uint8Array(${MAX_FILE_BYTES} + 1)));
      out.bigRaw = await errorOf(sbx.files.write("/home/user/big2.bin", new Uint8Array(${MAX_FILE_BYTES} + 1), { useOctetStream: true }));
      out.bigThere = await sbx.files.exists("/home/user/big.bin");
      out.gzip = await errorOf(sbx.files.write("/home/user/z.txt", "z", { gzip: true }));
      out.root = await errorOf(sbx.files.read("/home/user/x", { user: "root" }));
      out.polling = await errorOf(sbx.files.rpc.createWatcher({ path: "/home/user" }));
      ${PRINT}`,
      { env: s.env },
    );
    const seen = lastJson<Record<string, { name: string; message: string } | boolean>>(r);
    expect(seen.missing).toMatchObject({ name: "FileNotFoundError" });
    for (const key of ["passwd", "listEtc", "climb"])
      expect(seen[key], key).toMatchObject({
        name: "InvalidArgumentError",
        message: expect.stringContaining("under /home/user"),
      });
    for (const key of ["big", "bigRaw"])
      expect(seen[key], key).toMatchObject({
        name: "InvalidArgumentError",
        message: expect.stringContaining(`${MAX_FILE_BYTES} bytes per file (maxFileBytes)`),
      });
    expect(seen.bigThere).toBe(false);
    expect(seen.gzip).toMatchObject({ message: expect.stringContaining("Content-Encoding gzip") });
    expect(seen.root).toMatchObject({ message: expect.stringContaining("unprivileged user") });
    expect(seen.polling).toMatchObject({ message: expect.stringContaining("use watchDir") });
  });

  it("watchDir reports a create and a write made by another client", async () => {
    const r = await runScript(
      w,
      `${PRELUDE}
      const events = [];
      await sbx.files.makeDir("/home/user/watched");
      const handle = await sbx.files.watchDir("/home/user/watched", (e) => events.push(e.type + ":" + e.name));
      await sbx.files.write("/home/user/watched/new.txt", "1");
      await new Promise((r) => setTimeout(r, 600));
      await sbx.files.write("/home/user/watched/new.txt", "22");
      for (let i = 0; i < 50 && !events.some((e) => e.startsWith("write")); i++)
        await new Promise((r) => setTimeout(r, 100));
      await handle.stop();
      out.events = events;
      ${PRINT}`,
      { env: s.env },
    );
    const { events } = lastJson<{ events: string[] }>(r);
    expect(events).toContain("create:new.txt");
    expect(events).toContain("write:new.txt");
  });

  it("a command sees what files.write put in /home/user, at /home/user and /workspace", async () => {
    const r = await runScript(
      w,
      `${PRELUDE}
      await sbx.files.write("/home/user/x", "from the SDK");
      ${PRINT}`,
      { env: s.env },
    );
    expect(r.code).toBe(0);
    const res = await w.server.request("POST", `/v1/sessions/${s.sessionId}/commands`, {
      token: w.apiKey,
      body: { command: "cat /home/user/x; echo; cat /workspace/x; echo; cd /home/user && ls x" },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { stdout: string };
    expect(body.stdout).toBe("from the SDK\nfrom the SDK\nx\n");
  });
});
