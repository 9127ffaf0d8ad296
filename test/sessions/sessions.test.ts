/** Sessions in process: a sandbox that lives across calls, and leaves nothing when it goes. */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { loadConfig } from "../../src/config/load.js";
import { SessionManager } from "../../src/sessions/manager.js";
import { expectNothingLeft, testHost } from "../helpers/sandbox.js";
import { eventually } from "../helpers/server.js";

const config = loadConfig({
  env: {},
  overrides: { maxSessionsPerUser: 200, sessionIdleTimeout: 2 },
});
let manager: SessionManager;
const events: string[] = [];

beforeAll(async () => {
  manager = new SessionManager(config, await testHost(), silentLogger, {
    audit: (e) => events.push(e.event),
  });
});
afterAll(async () => {
  await manager?.closeAll();
});

describe("sessions", () => {
  it("keeps files and state between commands, and runs argv or shell commands", async () => {
    const s = await manager.create("ann", { limits: { memoryMb: 256 } });
    expect(s).toMatchObject({ userId: "ann", status: "running", limits: { memoryMb: 256 } });
    const first = await manager.command(s.id, "ann", {
      command: "echo hello > note.txt; mkdir -p sub; echo $HOME",
    });
    expect(first).toMatchObject({ status: "completed", exitCode: 0, stdout: "/workspace\n" });
    const second = await manager.command(s.id, "ann", { command: ["/bin/cat", "note.txt"] });
    expect(second.stdout).toBe("hello\n");
    const cwd = await manager.command(s.id, "ann", { command: "pwd", cwd: "sub" });
    expect(cwd.stdout).toBe("/workspace/sub\n");
    const failed = await manager.command(s.id, "ann", { command: "exit 3" });
    expect(failed).toMatchObject({ status: "failed", exitCode: 3 });
    const slow = await manager.command(s.id, "ann", { command: "sleep 30", timeout: 0.5 });
    expect(slow.status).toBe("timeout");
    // The session survives its command's timeout.
    expect((await manager.command(s.id, "ann", { command: "echo alive" })).stdout).toBe("alive\n");
    await manager.destroy(s.id, "ann", "test");
  });

  it("starts the session's own context in the background, before its first cell", async () => {
    const s = await manager.create("ann");
    const running = async (): Promise<boolean> => {
      const ps = await manager.command(s.id, "ann", {
        command: "cat /proc/[0-9]*/cmdline | tr '\\0' ' '",
      });
      return ps.stdout.includes("/.warden/lib/kernel.py");
    };
    // No cell has run: the kernel is there all the same, and the first cell uses it.
    await eventually(running);
    const pid = await manager.run(s.id, "ann", { code: "import os\nos.getpid()" });
    const again = await manager.run(s.id, "ann", { code: "os.getpid()" });
    expect(again.results[0]?.data["text/plain"]).toBe(pid.results[0]?.data["text/plain"]);
    await manager.destroy(s.id, "ann", "test");
  });

  it("keeps a Python context between calls: variables, imports, main result, errors, interrupts", async () => {
    const s = await manager.create("ann");
    const first = await manager.run(s.id, "ann", { code: "x = 41" });
    expect(first).toMatchObject({ status: "completed", results: [], error: null });
    const second = await manager.run(s.id, "ann", {
      code: "import math\nprint('side effect')\nx + 1",
    });
    expect(second.stdout).toBe("side effect\n");
    expect(second.results).toEqual([{ data: { "text/plain": "42" }, isMainResult: true }]);
    expect(
      (await manager.run(s.id, "ann", { code: "math.floor(2.5)" })).results[0]?.data["text/plain"],
    ).toBe("2");
    const error = await manager.run(s.id, "ann", { code: "1 / 0" });
    expect(error).toMatchObject({
      status: "failed",
      error: { name: "ZeroDivisionError", value: "division by zero" },
    });
    expect(error.error?.traceback).toContain("ZeroDivisionError");
    const html = await manager.run(s.id, "ann", {
      code: "class H:\n    def _repr_html_(self): return '<b>hi</b>'\nH()",
    });
    expect(html.results[0]?.data["text/html"]).toBe("<b>hi</b>");
    // A runaway cell is interrupted; the context and its variables survive.
    const loop = await manager.run(s.id, "ann", { code: "while True: pass", timeout: 1 });
    expect(loop).toMatchObject({ status: "timeout", error: { name: "KeyboardInterrupt" } });
    expect((await manager.run(s.id, "ann", { code: "x" })).results[0]?.data["text/plain"]).toBe(
      "41",
    );
    // Output from C level (a subprocess) is captured too.
    const shell = await manager.run(s.id, "ann", {
      code: "import os\nos.system('echo from-the-shell')",
    });
    expect(shell.stdout).toContain("from-the-shell");
    await manager.destroy(s.id, "ann", "test");
  });

  it("is not idle while a command runs longer than the idle timeout", async () => {
    const s = await manager.create("ann"); // idle timeout 2 s in this file
    const long = await manager.command(s.id, "ann", { command: "sleep 3.5; echo done" });
    expect(long.stdout).toBe("done\n");
    await manager.destroy(s.id, "ann", "test");
  });

  it("stops a call whose client goes away; the session and its context go on", async () => {
    const s = await manager.create("ann");
    await manager.run(s.id, "ann", { code: "kept = 7" });
    const gone = new AbortController();
    setTimeout(() => gone.abort(), 300);
    const cell = await manager.run(s.id, "ann", {
      code: "import time\ntime.sleep(60)",
      timeout: 120,
      signal: gone.signal,
    });
    expect(cell).toMatchObject({ status: "killed", error: { name: "KeyboardInterrupt" } });
    const again = new AbortController();
    setTimeout(() => again.abort(), 300);
    const cmd = await manager.command(s.id, "ann", {
      command: "sleep 60 & sleep 60",
      timeout: 120,
      signal: again.signal,
    });
    expect(cmd).toMatchObject({ status: "killed", signal: "SIGKILL" });
    const after = await manager.run(s.id, "ann", { code: "kept * 6" });
    expect(after.results[0]?.data["text/plain"]).toBe("42");
    const procs = await manager.command(s.id, "ann", {
      command: "cat /proc/[0-9]*/comm 2>/dev/null | grep -c ^sleep || true",
    });
    expect(procs.stdout.trim()).toBe("0");
    await manager.destroy(s.id, "ann", "test");
  }, 60_000);

  it("returns a matplotlib figure as an image/png result", async () => {
    const s = await manager.create("ann", { limits: { memoryMb: 512 } });
    const plot = await manager.run(s.id, "ann", {
      code: "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.title('squares')",
      timeout: 60,
    });
    expect(plot.error).toBeNull();
    const image = plot.results.find((r) => r.data["image/png"]);
    expect(image?.isMainResult).toBe(false);
    const png = Buffer.from(image!.data["image/png"]!, "base64");
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(png.length).toBeGreaterThan(1000);
    await manager.destroy(s.id, "ann", "test");
  });

  it("keeps a JavaScript context between calls: let, functions, promises, errors, timeouts", async () => {
    const s = await manager.create("ann");
    await manager.run(s.id, "ann", {
      language: "javascript",
      code: "let counter = 41; function bump() { return ++counter; }",
    });
    const next = await manager.run(s.id, "ann", {
      language: "js",
      code: "console.log('bumping'); bump()",
    });
    expect(next).toMatchObject({
      status: "completed",
      stdout: "bumping\n",
      results: [{ data: { "text/plain": "42" }, isMainResult: true }],
    });
    const awaited = await manager.run(s.id, "ann", {
      language: "javascript",
      code: "Promise.resolve(counter * 2)",
    });
    expect(awaited.results[0]?.data["text/plain"]).toBe("84");
    const error = await manager.run(s.id, "ann", {
      language: "javascript",
      code: "undefinedThing.x",
    });
    expect(error).toMatchObject({ status: "failed", error: { name: "ReferenceError" } });
    const loop = await manager.run(s.id, "ann", {
      language: "javascript",
      code: "while (true) {}",
      timeout: 1,
    });
    expect(loop.status).toBe("timeout");
    expect(
      (await manager.run(s.id, "ann", { language: "javascript", code: "counter" })).results[0]
        ?.data["text/plain"],
    ).toBe("42");
    await expect(manager.run(s.id, "ann", { language: "ruby", code: "1" })).rejects.toMatchObject({
      code: "UNSUPPORTED_LANGUAGE",
    });
    await manager.destroy(s.id, "ann", "test");
  });

  it("moves files in and out, binary-safe, and lists them", async () => {
    const s = await manager.create("ann");
    const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
    await manager.writeFile(s.id, "ann", "data/blob.bin", bytes);
    expect(await manager.readFile(s.id, "ann", "data/blob.bin")).toEqual(bytes);
    const listing = await manager.listFiles(s.id, "ann", "data");
    expect(listing).toEqual([expect.objectContaining({ name: "blob.bin", type: "file", size: 7 })]);
    await manager.makeDir(s.id, "ann", "empty/dir");
    await manager.deleteFile(s.id, "ann", "data/blob.bin");
    await expect(manager.readFile(s.id, "ann", "data/blob.bin")).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    await manager.destroy(s.id, "ann", "test");
  });

  it("gives nothing of the host through planted links or traversal", async () => {
    const s = await manager.create("ann");
    await manager.command(s.id, "ann", {
      command:
        "ln -s /etc/shadow shadow; ln -s /etc/passwd passwd; ln -s /proc/1/root root1; ln -s /dev/zero zero",
    });
    await expect(manager.readFile(s.id, "ann", "shadow")).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    // A link to /etc/passwd reaches the sandbox's own generated file, never the host's.
    const passwd = (await manager.readFile(s.id, "ann", "passwd")).toString();
    expect(passwd).toContain("sandbox:x:1000");
    expect(passwd).not.toBe(readFileSync("/etc/passwd", "utf8"));
    await expect(manager.readFile(s.id, "ann", "zero")).rejects.toMatchObject({
      code: "INVALID_REQUEST",
    });
    await expect(manager.readFile(s.id, "ann", "../../etc/passwd")).rejects.toMatchObject({
      code: "INVALID_REQUEST",
    });
    await expect(manager.writeFile(s.id, "ann", "/etc/x", Buffer.from("x"))).rejects.toMatchObject({
      code: "INVALID_REQUEST",
    });
    // Writing to a planted link replaces the link; it never writes through it.
    await manager.writeFile(s.id, "ann", "passwd", Buffer.from("mine"));
    expect(
      (
        await manager.command(s.id, "ann", {
          command: "cat /etc/passwd | grep -c sandbox; cat passwd",
        })
      ).stdout,
    ).toBe("1\nmine");
    await manager.destroy(s.id, "ann", "test");
  });

  it("belongs to its owner only and respects the per-user maximum", async () => {
    const s = await manager.create("ann");
    expect(() => manager.get(s.id, "bob")).toThrow(/not found/);
    await expect(manager.command(s.id, "bob", { command: "true" })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    const strict = new SessionManager(
      { ...config, maxSessionsPerUser: 1 },
      await testHost(),
      silentLogger,
      { audit: () => undefined },
    );
    // Started together, only one gets through: a session being started counts.
    const raced = await Promise.allSettled([strict.create("cat"), strict.create("cat")]);
    expect(raced.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(raced.find((r) => r.status === "rejected")).toMatchObject({
      reason: { code: "QUOTA_EXCEEDED" },
    });
    await expect(strict.create("cat")).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    await strict.closeAll();
    await manager.destroy(s.id, "ann", "test");
  });

  it("a memory bomb ends its own command (memory_limit), the session stays usable", async () => {
    const s = await manager.create("ann", { limits: { memoryMb: 128 } });
    const bomb = await manager.command(s.id, "ann", {
      command: ["/usr/bin/python3", "-c", "x = []\nwhile True: x.append(bytearray(8 << 20))"],
    });
    expect(bomb).toMatchObject({ status: "memory_limit", signal: "SIGKILL" });
    expect((await manager.command(s.id, "ann", { command: "echo still here" })).stdout).toBe(
      "still here\n",
    );
    await manager.destroy(s.id, "ann", "test");
  });

  it("expires idle sessions, and 100 sessions created, used and ended leave nothing behind", async () => {
    const host = await testHost();
    const idle = await manager.create("ann");
    // Idle timeout 2 s, swept every second: gone within a few seconds however busy the machine.
    await eventually(async () => manager.list("ann", false).every((x) => x.id !== idle.id));
    expect(() => manager.get(idle.id, "ann")).toThrow(/not found/);
    expect(events).toContain("session_ended");

    const made: { id: string; box: { id: string; uid: number } }[] = [];
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          const s = await manager.create("load");
          await manager.command(s.id, "load", { command: "echo $$ > pid; sleep 0.1 & true" });
          const internal = (
            manager as unknown as {
              sessions: Map<string, { sandbox: { box: { id: string; uid: number } } }>;
            }
          ).sessions.get(s.id)!;
          made.push({
            id: s.id,
            box: { id: internal.sandbox.box.id, uid: internal.sandbox.box.uid },
          });
          await manager.destroy(s.id, "load", "test");
        }),
      );
    }
    expect(made).toHaveLength(100);
    for (const m of made) await expectNothingLeft(host, m.box);
  }, 120_000);
});
