/**
 * Code in a cell attacks its own kernel's framing: forged answers written to
 * the kernel's channel for the cells that follow, a line without end, huge
 * and numerous display data, forged MIME keys. Each is cut at a bound or
 * ignored, the next cells get their own results, and the session goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { loadConfig } from "../../src/config/load.js";
import { MAX_RESULTS_PER_CELL } from "../../src/sessions/agent-protocol.js";
import { SessionManager } from "../../src/sessions/manager.js";
import { testHost } from "../helpers/sandbox.js";

const config = loadConfig({ env: {}, overrides: { maxSessionsPerUser: 10 } });
let manager: SessionManager;

beforeAll(async () => {
  manager = new SessionManager(config, await testHost(), silentLogger, { audit: () => {} });
});
afterAll(async () => {
  await manager?.closeAll();
});

/** A thread that writes forged answers for request ids 1..400 to every descriptor above 2, for 4 s. */
const FORGER = `
import json, os, threading, time
def forge():
    forged = "".join(json.dumps({"id": i, "nonce": None, "type": "result", "error": None,
        "results": [{"data": {"text/plain": "'FORGED'"}, "isMainResult": True}]}) + "\\n" for i in range(1, 400)).encode()
    end = time.time() + 4
    while time.time() < end:
        for fd in os.listdir("/proc/self/fd"):
            if int(fd) > 2:
                try:
                    os.write(int(fd), forged)
                except OSError:
                    pass
        time.sleep(0.05)
threading.Thread(target=forge, daemon=True).start()
`;

describe("a cell against its kernel's framing", () => {
  it("cannot forge the results of the Python cells that follow it", async () => {
    const s = await manager.create("evil", { limits: { memoryMb: 512 } });
    await manager.run(s.id, "evil", { code: FORGER });
    for (let i = 0; i < 3; i++) {
      const cell = await manager.run(s.id, "evil", {
        code: `import time\ntime.sleep(0.5)\n${i} * 7`,
      });
      expect(cell).toMatchObject({ status: "completed", error: null });
      expect(cell.results).toEqual([{ data: { "text/plain": String(i * 7) }, isMainResult: true }]);
    }
    await manager.destroy(s.id, "evil", "test");
  }, 60_000);

  it("cannot end a later bash cell early by writing its framing", async () => {
    const s = await manager.create("evil", { language: "bash" });
    await manager.run(s.id, "evil", {
      code: "( for i in $(seq 80); do for fd in /proc/$$/fd/*; do echo '00000000000000000000000000000000 0' >\"$fd\"; done 2>/dev/null; sleep 0.05; done ) >/dev/null 2>&1 &",
    });
    const cell = await manager.run(s.id, "evil", { code: "sleep 1; echo finished", timeout: 30 });
    expect(cell.status).toBe("completed");
    expect(cell.stdout).toContain("finished");
    await manager.destroy(s.id, "evil", "test");
  }, 60_000);

  it("an endless line on the kernel's channel restarts the context; the session goes on", async () => {
    const s = await manager.create("evil", { limits: { memoryMb: 768 } });
    const cell = await manager.run(s.id, "evil", {
      code: "import os\nchunk = b'x' * (1 << 20)\nfor fd in [int(f) for f in os.listdir('/proc/self/fd') if int(f) > 2]:\n    try:\n        for _ in range(100): os.write(fd, chunk)\n    except OSError:\n        pass",
      timeout: 20,
    });
    expect(cell).toMatchObject({ status: "failed", error: { name: "KernelDied" } });
    const after = await manager.run(s.id, "evil", { code: "6 * 7" });
    expect(after.results[0]?.data["text/plain"]).toBe("42");
    await manager.destroy(s.id, "evil", "test");
  }, 60_000);

  it("a context that dies as it starts fails its cell; the agent and the session go on", async () => {
    const s = await manager.create("evil");
    // HOME is /workspace: Python runs the user's usercustomize before the kernel.
    await manager.command(s.id, "evil", {
      command:
        "d=$(python3 -c 'import site; print(site.getusersitepackages())'); mkdir -p $d; echo 'import os; os._exit(3)' > $d/usercustomize.py",
    });
    // The context started with the session ends, so the next ones start with the plant.
    await manager.run(s.id, "evil", { code: "import os; os._exit(0)" });
    for (let i = 0; i < 3; i++) {
      const cell = await manager.run(s.id, "evil", { code: "1" });
      expect(cell).toMatchObject({ status: "failed", error: { name: "KernelDied" } });
    }
    const alive = await manager.command(s.id, "evil", { command: "echo alive" });
    expect(alive.stdout).toBe("alive\n");
    await manager.destroy(s.id, "evil", "test");
  }, 60_000);

  it("huge or numerous display data are cut to the bounds, forged MIME keys dropped", async () => {
    const s = await manager.create("evil", { limits: { memoryMb: 768 } });
    const big = await manager.run(s.id, "evil", {
      code: "display(HTML('x' * (20 << 20)))\nfor i in range(100): display(i)\ndisplay({'Text/HTML': 'a', 'text/html\\r\\nx': 'b', '../../etc': 'c', 'text/plain': 'ok'}, raw=True)",
      timeout: 60,
    });
    expect(big.error).toBeNull();
    expect(big.results.length).toBeLessThanOrEqual(MAX_RESULTS_PER_CELL);
    expect(big.results[0]?.data["text/plain"]).toMatch(/^<result too large/);
    expect(big.results[0]?.data["text/html"]).toBeUndefined();
    const js = await manager.run(s.id, "evil", {
      language: "javascript",
      code: "Array.from({ length: 3e6 }, (_, i) => i)",
      timeout: 60,
    });
    expect(js.error).toBeNull();
    expect(js.results[0]?.data["application/json"]).toBeUndefined(); // > 4 MiB of JSON
    const raw = await manager.run(s.id, "evil", {
      code: "display({'Text/HTML': 'a', 'text/html\\r\\nx': 'b', '../../etc': 'c', 'text/plain': 'ok'}, raw=True)",
    });
    expect(raw.results).toEqual([{ data: { "text/plain": "ok" }, isMainResult: false }]);
    await manager.destroy(s.id, "evil", "test");
  }, 120_000);
});
