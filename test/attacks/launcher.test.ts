/**
 * warden-launch is a root process: its input is parsed as if corrupted. Each
 * test feeds it something hostile and checks it refused, and that neither it
 * (when the stream is still sound) nor Warden's side fell over or leaked fds.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { defaultNativeDir } from "../../src/sandbox/host.js";
import { Launcher } from "../../src/sandbox/launcher.js";

const LAUNCH = join(defaultNativeDir(), "warden-launch");
const dir = mkdtempSync(join(tmpdir(), "launch-attack-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A raw launcher on a socket nobody but this test listens on. */
async function rawLauncher(name: string) {
  const path = join(dir, `${name}.sock`);
  const accepted: Socket[] = [];
  const server: Server = createServer((s) => accepted.push(s));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const proc: ChildProcessWithoutNullStreams = spawn(
    LAUNCH,
    ["--helper", "/bin/true", "--seccomp", "/etc/hostname", "--socket", path],
    { stdio: "pipe", env: {} },
  );
  const lines: string[] = [];
  createInterface({ input: proc.stdout }).on("line", (l) => lines.push(l));
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  const frame = (id: number, argv: string[]): Buffer => {
    const payload = Buffer.from(argv.map((a) => `${a}\0`).join(""));
    const header = Buffer.alloc(8);
    header.writeUInt32LE(payload.length, 0);
    header.writeUInt32LE(id, 4);
    return Buffer.concat([header, payload]);
  };
  const waitLine = async (prefix: string): Promise<string> => {
    for (let i = 0; i < 400; i++) {
      const line = lines.find((l) => l.startsWith(prefix));
      if (line) return line;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no line ${prefix}; got ${lines.join(" | ")}`);
  };
  const close = () => {
    proc.stdin.end();
    server.close();
    for (const s of accepted) s.destroy();
  };
  return { proc, lines, frame, waitLine, exited, accepted, close };
}

describe("warden-launch refuses hostile requests", () => {
  it("runs nothing but the configured helper", async () => {
    const l = await rawLauncher("other");
    await l.waitLine("READY");
    l.proc.stdin.write(l.frame(1, ["/bin/sh", "-c", "touch /tmp/pwned"]));
    l.proc.stdin.write(l.frame(2, ["/bin/true/../sh"]));
    expect(await l.waitLine("F 1 ")).toBe("F 1 request: program is not the helper");
    expect(await l.waitLine("F 2 ")).toContain("not the helper");
    // Still serving: the helper itself starts and its exit is reported.
    l.proc.stdin.write(l.frame(3, ["/bin/true"]));
    expect(await l.waitLine("P 3 ")).toMatch(/^P 3 \d+$/);
    expect(await l.waitLine("X 3 ")).toBe("X 3 0");
    l.close();
    expect(await l.exited).toBe(0);
  });

  it("refuses malformed argv and ends on an oversized frame, without reading it", async () => {
    const l = await rawLauncher("big");
    await l.waitLine("READY");
    const header = Buffer.alloc(8);
    header.writeUInt32LE(4, 0);
    header.writeUInt32LE(5, 4);
    l.proc.stdin.write(Buffer.concat([header, Buffer.from("/bin")])); // no final NUL
    expect(await l.waitLine("F 5 ")).toContain("must end with NUL");
    header.writeUInt32LE(0xffff_fff0, 0);
    header.writeUInt32LE(6, 4);
    l.proc.stdin.write(header);
    expect(await l.waitLine("E ")).toContain("exceeds the 1048576-byte limit");
    expect(await l.exited).toBe(0);
    l.close();
  });

  it("refuses more arguments than it can hold", async () => {
    const l = await rawLauncher("argc");
    await l.waitLine("READY");
    l.proc.stdin.write(l.frame(9, ["/bin/true", ...Array<string>(9000).fill("x")]));
    expect(await l.waitLine("F 9 ")).toContain("more than 8192 arguments");
    l.close();
  });
});

describe("Warden's side of the launcher", () => {
  it("drops stray connections to its socket and keeps serving", async () => {
    const socketDir = join(dir, "stray");
    const launcher = new Launcher({
      launcherPath: LAUNCH,
      helperPath: "/bin/cat",
      seccompPath: "/etc/hostname",
      socketDir,
      logger: silentLogger,
    });
    try {
      const first = launcher.start([]);
      await new Promise((r) => first.once("spawn", r));
      await new Promise((r) => setTimeout(r, 200)); // its own five sockets are in
      const [name] = readdirSync(socketDir);
      // A forged hello for the live request's stdout slot, then garbage.
      const forged = connect(join(socketDir, name!));
      const hello = Buffer.from([0x57, 0x4c, 1, 0, 1, 0, 0, 0]);
      forged.write(Buffer.concat([hello, Buffer.alloc(1 << 16, 1)]));
      const junk = connect(join(socketDir, name!));
      junk.write(Buffer.alloc(1 << 16, 0xff));
      const ended = (s: Socket) =>
        new Promise((r) => s.on("close", r).on("error", () => undefined));
      await Promise.all([ended(forged), ended(junk)]);
      // The real run is untouched: stdin reaches cat and comes back.
      const out: Buffer[] = [];
      first.stdio[1].on("data", (d: Buffer) => out.push(d));
      first.stdio[0].end("hello\n");
      await new Promise((r) => first.once("close", r));
      expect(Buffer.concat(out).toString()).toBe("hello\n");
    } finally {
      await launcher.close();
    }
  });

  it("leaks no fd in the launcher or in Warden over 1000 starts", async () => {
    const launcher = new Launcher({
      launcherPath: LAUNCH,
      helperPath: "/bin/true",
      seccompPath: "/etc/hostname",
      socketDir: join(dir, "leak"),
      logger: silentLogger,
    });
    const fds = (pid: number | "self") => readdirSync(`/proc/${pid}/fd`).length;
    try {
      const warm = launcher.start([]);
      await new Promise((r) => warm.once("close", r));
      const before = { launcher: fds(launcher.pid!), warden: fds("self") };
      for (let batch = 0; batch < 50; batch++)
        await Promise.all(
          Array.from({ length: 20 }, () => {
            const child = launcher.start([]);
            child.stdio[0].end();
            return new Promise((r) => child.once("close", r));
          }),
        );
      await new Promise((r) => setTimeout(r, 100));
      expect(fds(launcher.pid!)).toBe(before.launcher);
      expect(fds("self")).toBeLessThanOrEqual(before.warden);
    } finally {
      await launcher.close();
    }
  });
});
