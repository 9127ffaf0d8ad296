/**
 * What a newcomer trips over at the command line: a busy port, a missing
 * file, the version, `warden mcp` without root, metric names.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bin, root, run, warden } from "../helpers/cli.js";
import { startServer } from "../helpers/server.js";

const scratch = mkdtempSync(join(tmpdir(), "warden-cli-usage-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("warden serve on a busy port", () => {
  let busy: Server;
  afterAll(() => busy?.close());

  it("exits non-zero with a clear message, before minting a key or making its data dir", async () => {
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as { port: number }).port;
    const dataDir = join(scratch, "serve-data");
    const r = await warden(["serve", "--port", String(port), "--data-dir", dataDir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`port ${port} on 127.0.0.1 is already in use`));
    expect(r.stderr).not.toMatch(/admin key/i);
    expect(r.stderr).not.toMatch(/wdn_|internal error/);
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe("warden run with a file that is not there", () => {
  it.each([
    [["run", "missing.py"], /missing\.py: no such file/],
    [["run", "missing.unknown-ext"], /missing\.unknown-ext: no such file/],
    [["run", "--stdin", "nope.txt", "examples/hello.py"], /--stdin nope\.txt: no such file/],
    [["run", "examples"], /examples: is a directory/],
  ])("warden %j is bad usage (2)", async (args, message) => {
    const r = await warden(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/internal error/);
  });
});

describe("warden --version", () => {
  const version = (
    JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }
  ).version;
  it.each(["--version", "-V"])("%s prints the package version", async (flag) => {
    const r = await warden([flag]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });
});

describe("warden mcp as a user who is not root", () => {
  it("answers the client's initialize with the reason, and says it on stderr", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "warden-mcp-nobody-"));
    chmodSync(cwd, 0o777);
    try {
      const initialize = JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-06-18",
          capabilities: {},
          clientInfo: { name: "test", version: "1" },
        },
      });
      const r = await run(
        "setpriv",
        ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, bin, "mcp"],
        { input: `${initialize}\n`, cwd, env: { HOME: cwd } },
      );
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/must run as root/);
      const answer = JSON.parse(r.stdout.trim().split("\n")[0]!) as {
        id: number;
        error: { message: string };
      };
      expect(answer.id).toBe(1);
      expect(answer.error.message).toMatch(/warden mcp cannot run: .*must run as root/);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe("Prometheus metric names", () => {
  it("are warden_process_* and warden_nodejs_*, never warden_process_process_*", async () => {
    const server = await startServer();
    try {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(text).toMatch(/^warden_process_cpu_seconds_total /m);
      expect(text).toMatch(/^warden_process_resident_memory_bytes /m);
      expect(text).toMatch(/^warden_nodejs_heap_size_used_bytes /m);
      expect(text).not.toMatch(/warden_process_process_|warden_process_nodejs_/);
    } finally {
      await server.stop();
    }
  });
});
