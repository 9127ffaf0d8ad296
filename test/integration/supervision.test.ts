/** Time limits, kills and the box lifecycle, on real sandboxes. */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { limits, runCode, testHost, expectNothingLeft } from "../helpers/sandbox.js";

describe("supervision", () => {
  it("stops a sleeping program at the wall-clock timeout with SIGTERM", async () => {
    const result = await runCode("bash", "exec sleep 60", { limits: { timeoutMs: 500 } });
    expect(result).toMatchObject({ status: "timeout", success: false, signal: "SIGTERM" });
    expect(result.metrics.executionTimeMs).toBeGreaterThanOrEqual(500);
  });

  it("SIGKILLs a program that traps SIGTERM once the grace period is over", async () => {
    const result = await runCode(
      "python",
      "import signal, time\nsignal.signal(signal.SIGTERM, lambda *a: print('ignored TERM', flush=True))\nwhile True: time.sleep(0.01)",
      { limits: { timeoutMs: 500, killGraceMs: 400 } },
    );
    expect(result).toMatchObject({ status: "timeout", signal: "SIGKILL" });
    expect(result.stdout).toContain("ignored TERM");
    expect(result.metrics.executionTimeMs).toBeGreaterThanOrEqual(900);
  });

  it("lets a program that handles SIGTERM finish cleanly within the grace", async () => {
    const result = await runCode(
      "python",
      "import signal, sys, time\ndef bye(*a):\n    print('cleaning up', flush=True); sys.exit(3)\nsignal.signal(signal.SIGTERM, bye)\ntime.sleep(60)",
      { limits: { timeoutMs: 500, killGraceMs: 5000 } },
    );
    expect(result).toMatchObject({ status: "timeout", exitCode: 3, stdout: "cleaning up\n" });
    expect(result.metrics.executionTimeMs).toBeLessThan(5000);
  });

  it("enforces a CPU-time limit across the whole process tree", async () => {
    // Two busy children share the budget: a per-process rlimit alone would let them use twice as much.
    const result = await runCode("bash", "spin() { while :; do :; done; }\nspin & spin & wait", {
      limits: { cpuTimeMs: 600, timeoutMs: 20_000 },
    });
    expect(result.status).toBe("timeout");
    expect(result.metrics.cpuTimeMs).toBeGreaterThanOrEqual(600);
    expect(result.metrics.executionTimeMs).toBeLessThan(20_000);
  });

  it("kills on abort and reports killed", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const result = await runCode("bash", "sleep 60", { signal: controller.signal });
    expect(result).toMatchObject({ status: "killed", signal: "SIGKILL" });
  });

  it("runs several programs in one box, sharing the workspace, then leaves nothing", async () => {
    const host = await testHost();
    const box = await host.prepare({ diskMb: 8, files: [{ path: "in.txt", content: "seed" }] });
    try {
      const first = await box.run({
        argv: ["/bin/sh", "-c", "cat in.txt > out.txt; echo more >> out.txt"],
        limits: limits(),
      });
      expect(first.status).toBe("completed");
      const second = await box.run({ argv: ["/bin/cat", "out.txt"], limits: limits() });
      expect(second.stdout).toBe("seedmore\n");
    } finally {
      await box.destroy();
      await box.destroy(); // safe twice
    }
    await expect(box.run({ argv: ["/bin/true"], limits: limits() })).rejects.toThrow(/destroyed/);
    await expectNothingLeft(host, box);
  });

  it("fails a run whose sandbox cannot be set up (a bind bubblewrap cannot make), and leaves nothing", async () => {
    const host = await testHost();
    const box = await host.prepare({ diskMb: 8 });
    try {
      // Before the fix this waited forever: the helper holds the box once bubblewrap ends.
      const result = await box.run({
        argv: ["/bin/true"],
        mounts: [{ source: "/nonexistent/warden-test-file", target: "/.warden/missing" }],
        limits: limits({ timeoutMs: 60_000 }),
      });
      expect(result.status).toBe("error");
      expect(result.errorMessage).toMatch(/did not start.*Can't find source path/);
    } finally {
      await box.destroy();
    }
    await expectNothingLeft(host, box);
  });

  it("binds a directory only when no link leads to it (an installer could plant one to the host's /)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-bind-"));
    mkdirSync(join(dir, "real", "sub"), { recursive: true });
    writeFileSync(join(dir, "real", "sub", "seen"), "");
    symlinkSync(join(dir, "real"), join(dir, "link"));
    const host = await testHost();
    try {
      for (const [source, ok] of [
        [join(dir, "real", "sub"), true],
        [join(dir, "link", "sub"), false],
      ] as const) {
        const box = await host.prepare({ diskMb: 8, binds: [{ source, target: "/.warden/env" }] });
        try {
          const result = await box.run({ argv: ["/bin/ls", "/.warden/env"], limits: limits() });
          if (ok) expect(result).toMatchObject({ status: "completed", stdout: "seen\n" });
          else expect(result).toMatchObject({ status: "error", stdout: "" });
        } finally {
          await box.destroy();
        }
        await expectNothingLeft(host, box);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("cleans up a prepared box that never ran", async () => {
    const host = await testHost();
    const box = await host.prepare({ diskMb: 1 });
    await box.destroy();
    await expectNothingLeft(host, box);
  });

  it("passes its self-test", async () => {
    expect(await (await testHost()).selfTest()).toBeNull();
  });
});
