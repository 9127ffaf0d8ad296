/**
 * Text from a session's programs crosses pipes in whatever pieces the kernel
 * hands over: a character split between two reads must come out whole, in
 * command output, cell output and rich results alike.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { loadConfig } from "../../src/config/load.js";
import { SessionManager } from "../../src/sessions/manager.js";
import { testHost } from "../helpers/sandbox.js";

const config = loadConfig({ env: {}, overrides: { maxSessionsPerUser: 20 } });
let manager: SessionManager;
const TEXT = "é€😀";
const N = 3000;
/** Writes TEXT * N in pieces of odd sizes (cutting characters), pausing so each piece is its own read. */
const WRITER = `
import os, sys, time
data = (${JSON.stringify(TEXT)} * ${N}).encode()
at, size = 0, 1
while at < len(data):
    piece = data[at:at + size]
    os.write(1, piece)
    os.write(2, piece)
    at += len(piece)
    size = size % 7 + 2
    if at % 50 < 9: time.sleep(0.001)
`;

beforeAll(async () => {
  manager = new SessionManager(config, await testHost(), silentLogger, { audit: () => undefined });
});
afterAll(async () => {
  await manager?.closeAll();
});

describe("multibyte output across reads", () => {
  it("keeps every character of a command's and a cell's output whole", async () => {
    const s = await manager.create("ann");
    await manager.writeFile(s.id, "ann", "w.py", Buffer.from(WRITER));
    const ran = await manager.command(s.id, "ann", { command: "python3 w.py" });
    expect(ran.status).toBe("completed");
    expect(ran.stdout).toBe(TEXT.repeat(N));
    expect(ran.stderr).toBe(TEXT.repeat(N));
    const cell = await manager.run(s.id, "ann", { code: WRITER });
    expect(cell.stdout).toBe(TEXT.repeat(N));
    // A rich result far larger than one pipe read, from the JavaScript context
    // (Python's kernel escapes non-ASCII in its JSON; Node's sends it raw).
    const rich = await manager.run(s.id, "ann", {
      language: "javascript",
      code: `({ t: ${JSON.stringify(TEXT)}.repeat(40000) })`,
    });
    const json = rich.results[0]?.data["application/json"] ?? "{}";
    expect((JSON.parse(json) as { t?: string }).t).toBe(TEXT.repeat(40_000));
    await manager.destroy(s.id, "ann", "test");
  });

  it("names the language whose context died", async () => {
    const s = await manager.create("ann");
    const died = await manager.run(s.id, "ann", {
      language: "javascript",
      // (process.exit() in a cell hangs the kernel until the cell's timeout: see kernel.cjs)
      code: "process.kill(process.pid, 'SIGKILL')",
      timeout: 10,
    });
    expect(died.error).toMatchObject({ name: "KernelDied" });
    expect(died.error?.value).toMatch(/JavaScript context ended/);
    await manager.destroy(s.id, "ann", "test");
  });
});
