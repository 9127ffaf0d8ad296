/** Piston's interactive socket (WS /api/v2/connect) against a real `warden serve`. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";
import { connect, lastExecution, type PistonMessage } from "./socket-client.js";

let server: TestServer;

beforeAll(async () => {
  server = await startServer({
    env: { WARDEN_PISTON_ANONYMOUS: "true" },
    config: {
      server: { rateLimits: { anonymous: { burst: 100, perMinute: 1000, perHour: 10_000 } } },
    },
  });
});
afterAll(async () => {
  await server?.stop();
});

/** The message kinds in order; output split over several data messages counts once. */
const types = (messages: PistonMessage[]): string[] =>
  messages
    .map((m) => (m.type === "stage" || m.type === "exit" ? `${m.type}:${String(m.stage)}` : m.type))
    .filter((t, i, all) => t !== "data" || all[i - 1] !== "data");

describe("Piston's interactive socket", () => {
  it("streams stdin: each answer arrives before the next line is sent (anonymous)", async () => {
    const c = await connect(server.url);
    c.send({
      type: "init",
      language: "python",
      version: "*",
      files: [
        {
          content:
            "name = input()\nprint(f'hello {name}', flush=True)\nn = int(input())\nprint(n * 2, flush=True)\n",
        },
      ],
    });
    await c.next((m) => m.type === "stage" && m.stage === "run");
    // The runtime message comes first, as in Piston.
    expect(c.messages[0]).toMatchObject({ type: "runtime", language: "python" });
    c.send({ type: "data", stream: "stdin", data: "world\n" });
    // Output may arrive in pieces: wait for the whole answer.
    await c.next(() => c.stdout() === "hello world\n");
    // The program is still waiting: nothing else came yet.
    expect(c.stdout()).toBe("hello world\n");
    expect(c.messages.some((m) => m.type === "exit")).toBe(false);
    c.send({ type: "data", stream: "stdin", data: "21\n" });
    const exit = await c.next((m) => m.type === "exit");
    expect(c.stdout()).toBe("hello world\n42\n");
    expect(exit).toMatchObject({ stage: "run", code: 0, signal: null });
    expect(await c.closed).toEqual({ code: 4999, reason: "Job Completed" });
    expect(types(c.messages)).toEqual(["runtime", "stage:run", "data", "exit:run"]);
  });

  it("shows a C program's compile and run stages, with a key", async () => {
    const c = await connect(server.url, server.adminToken);
    c.send({
      type: "init",
      language: "c",
      version: "*",
      files: [
        {
          name: "main.c",
          content: '#include <stdio.h>\nint main(void){puts("hi from c");return 3;}\n',
        },
      ],
    });
    expect(await c.closed).toEqual({ code: 4999, reason: "Job Completed" });
    expect(types(c.messages)).toEqual([
      "runtime",
      "stage:compile",
      "exit:compile",
      "stage:run",
      "data",
      "exit:run",
    ]);
    expect(c.messages.find((m) => m.type === "exit")).toMatchObject({ code: 0, signal: null });
    expect(c.stdout()).toBe("hi from c\n");
    expect(c.messages.at(-1)).toMatchObject({ stage: "run", code: 3, signal: null, status: "RE" });
  });

  it("a compile error ends after the compile stage, with the compiler's output", async () => {
    const c = await connect(server.url);
    c.send({ type: "init", language: "c", version: "*", files: [{ content: "int main( {" }] });
    expect((await c.closed).code).toBe(4999);
    expect(types(c.messages)).toEqual(["runtime", "stage:compile", "data", "exit:compile"]);
    expect(c.messages[2]).toMatchObject({
      stream: "stderr",
      data: expect.stringContaining("error"),
    });
    expect(c.messages[3]!.code).not.toBe(0);
  });

  it("a signal kills the run; the exit event says so and the record is killed", async () => {
    const c = await connect(server.url, server.adminToken);
    c.send({
      type: "init",
      language: "python",
      version: "3",
      files: [{ content: "import time\nprint('ready', flush=True)\ntime.sleep(120)\n" }],
    });
    // (the newline may come as a chunk of its own)
    await c.next((m) => m.type === "data" && String(m.data).startsWith("ready"));
    // A signal that would not end a process changes nothing.
    c.send({ type: "signal", signal: "SIGWINCH" });
    c.send({ type: "signal", signal: "SIGINT" });
    const exit = await c.next((m) => m.type === "exit");
    expect(exit).toMatchObject({ stage: "run", code: null, signal: "SIGKILL", status: "SG" });
    expect((await c.closed).code).toBe(4999);
    expect(await lastExecution(server)).toMatchObject({ status: "killed" });
  });

  it("init's stdin goes first; errors in init are Piston's error message and 4002", async () => {
    const c = await connect(server.url);
    c.send({
      type: "init",
      language: "python",
      files: [{ content: "print(input()[::-1])" }],
      stdin: "olleh\n",
    });
    await c.next((m) => m.type === "exit");
    expect(c.stdout()).toBe("hello\n");
    const bad = await connect(server.url);
    bad.send({ type: "init", language: "cobol", version: "*", files: [{ content: "x" }] });
    expect(await bad.closed).toEqual({ code: 4002, reason: "Notified Error" });
    expect(bad.messages).toEqual([{ type: "error", message: "cobol-* runtime is unknown" }]);
    const limit = await connect(server.url);
    limit.send({
      type: "init",
      language: "python",
      files: [{ content: "x" }],
      run_timeout: 10_000_000,
    });
    expect((await limit.closed).code).toBe(4002);
    expect(limit.messages[0]!.message).toMatch(/run_timeout cannot exceed the configured limit/);
  });

  it("closing the socket kills the run", async () => {
    const c = await connect(server.url, server.adminToken);
    c.send({
      type: "init",
      language: "python",
      files: [{ content: "import time\nprint('up', flush=True)\ntime.sleep(120)\n" }],
    });
    await c.next((m) => m.type === "data");
    c.ws.close();
    await c.closed;
    await expect.poll(async () => (await lastExecution(server))?.status).toBe("killed");
  });
});
