import { connect, type Socket } from "node:net";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ControlListener } from "../../src/sandbox/gvisor/control.js";
import { classify } from "../../src/sandbox/classify.js";
import { readLines, socketChannel } from "../../src/sandbox/control-channel.js";
import { PassThrough } from "node:stream";

let dir = "";
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once("error", reject);
  });
}

describe("the control socket", () => {
  it("accepts the first connection only, then refuses: a forged exit 0 never arrives", async () => {
    dir = await mkdtemp(join(tmpdir(), "ctl-"));
    const listener = await ControlListener.listen(join(dir, "box-ctl-1"));
    expect((await stat(join(dir, "box-ctl-1"))).mode & 0o777).toBe(0o700);
    const init = await dial(listener.path);
    const channel = socketChannel(listener.connection);
    const lines: string[] = [];
    channel.lines((l) => lines.push(l));
    init.write("ready\n");
    await listener.connection;
    // The path is gone: a program that learnt it cannot connect.
    await expect(dial(listener.path)).rejects.toThrow(/ENOENT|ECONNREFUSED/);
    // What init sends still arrives; nothing else can.
    init.end("exit 3\n");
    await channel.ended;
    expect(lines).toEqual(["ready", "exit 3"]);
    await listener.close();
  });

  it("a connection that never comes rejects when the listener closes, and the channel ends", async () => {
    dir = await mkdtemp(join(tmpdir(), "ctl-"));
    const listener = await ControlListener.listen(join(dir, "c"));
    const channel = socketChannel(listener.connection);
    await listener.close();
    await expect(listener.connection).rejects.toThrow(/never connected/);
    await channel.ended;
  });

  it("the request goes to init and Warden's half closes", async () => {
    dir = await mkdtemp(join(tmpdir(), "ctl-"));
    const listener = await ControlListener.listen(join(dir, "c"));
    const init = await dial(listener.path);
    const channel = socketChannel(listener.connection);
    channel.send(Buffer.from("W1 request"));
    const got: Buffer[] = [];
    init.on("data", (d: Buffer) => got.push(d));
    await new Promise((r) => init.once("end", r));
    expect(Buffer.concat(got).toString()).toBe("W1 request");
    init.destroy();
    await listener.close();
  });

  it("a status line longer than the bound ends the stream", () => {
    const input = new PassThrough();
    const lines: string[] = [];
    readLines(input, (l) => lines.push(l), 16);
    input.write("ready\n" + "x".repeat(40));
    expect(lines).toEqual(["ready"]);
    expect(input.destroyed).toBe(true);
  });
});

describe("classify: the gVisor facts", () => {
  const base = {
    program: null,
    bwrapStatus: 2,
    errors: [] as string[],
    timedOut: false,
    cpuExceeded: false,
    outputExceeded: false,
    killedByUser: false,
    forceKilled: false,
    disk: null,
    oomKills: 0,
  };
  it("the Sentry dying at pids.max is failed with SIGKILL, not a Warden error", () => {
    expect(classify({ ...base, pidsExceeded: true })).toEqual({
      status: "failed",
      exitCode: null,
      signal: "SIGKILL",
    });
  });
  it("a timeout stays a timeout", () => {
    expect(classify({ ...base, pidsExceeded: true, timedOut: true }).status).toBe("timeout");
  });
  it("the Sentry OOM-killed is memory_limit", () => {
    expect(classify({ ...base, oomKills: 1 }).status).toBe("memory_limit");
  });
  it("runsc dying for no known reason is an error", () => {
    expect(classify(base).status).toBe("error");
  });
});
