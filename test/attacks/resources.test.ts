/**
 * Resource attacks: each program tries to exhaust something. Every test
 * asserts the attack ended with the right status AND (through runCode) that
 * the sandbox left no process, cgroup, mount, workspace or uid lease.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { runCode as runIn } from "../helpers/sandbox.js";
import { skippedTiers, TIERS } from "../helpers/tiers.js";
import { EXPECT } from "./expect.js";
import { program } from "./program.js";

/** The host can still start processes and Warden still answers. */
function hostIsHealthy(): void {
  expect(spawnSync("/bin/true").status).toBe(0);
}

skippedTiers("resource attacks");

describe.each(TIERS)("resource attacks [%s]", (isolation) => {
  const expected = EXPECT[isolation];
  const runCode = (...[language, code, options]: Parameters<typeof runIn>) =>
    runIn(language, code, { ...options, isolation });

  it("fork bomb: capped by pids.max, stopped at the timeout", async () => {
    const result = await runCode("python", program("fork-bomb.py"), {
      limits: { pids: 32, timeoutMs: 2000, killGraceMs: 200, memoryMb: 512 },
    });
    expected.forkBomb(result);
    hostIsHealthy();
  });

  it("memory bomb: OOM-killed inside its cgroup", async () => {
    const result = await runCode("python", program("memory-bomb.py"), { limits: { memoryMb: 64 } });
    expected.memoryBomb(result, 64);
    hostIsHealthy();
  });

  it("memory through /dev/shm is charged to the sandbox too", async () => {
    const result = await runCode("python", program("shm-bomb.py"), { limits: { memoryMb: 64 } });
    expected.shmBomb(result, 64);
  });

  it("disk fill: /workspace and /tmp share one bounded tmpfs", async () => {
    const result = await runCode("python", program("disk-fill.py"), {
      limits: { diskMb: 16, memoryMb: 128 },
    });
    expect(result.status).toBe("disk_limit");
    expect(result.stdout).toMatch(/\/workspace\/fill: No space left on device after 1[0-6] MiB/);
    expect(result.stdout).toMatch(/\/tmp\/fill: No space left on device/);
  });

  it("inode exhaustion: empty files stop at the inode cap", async () => {
    const result = await runCode("python", program("many-files.py"), { limits: { diskMb: 4 } });
    expect(result.stdout).toMatch(/stopped after \d+ files: No space left on device/);
    expect(result.status).toBe("disk_limit");
  });

  it("fd exhaustion: stops at RLIMIT_NOFILE", async () => {
    const result = await runCode("python", program("fd-exhaustion.py"), {
      limits: { openFiles: 64 },
    });
    expect(result.status).toBe("completed");
    const [count, code] = result.stdout.trim().split(" ");
    expect(code).toBe("EMFILE");
    expect(Number(count)).toBeLessThan(64);
  });

  it("1 GB output flood: capped and killed, Warden's memory stays flat", async () => {
    const before = process.memoryUsage().rss;
    const result = await runCode("python", program("output-flood.py"), {
      limits: { outputBytes: 1 << 20 },
    });
    const grown = process.memoryUsage().rss - before;
    expect(result).toMatchObject({
      status: "output_limit",
      truncated: { stdout: true, stderr: false },
    });
    expect(Buffer.byteLength(result.stdout)).toBe(1 << 20);
    // A gigabyte went nowhere: Warden held on to about the cap, not the flood.
    expect(grown).toBeLessThan(128 * 1024 * 1024);
  });

  it("infinite loop: stopped at the wall-clock timeout", async () => {
    const result = await runCode("python", program("infinite-loop.py"), {
      limits: { timeoutMs: 1000 },
    });
    expect(result).toMatchObject({ status: "timeout", signal: "SIGTERM" });
  });

  it("SIGTERM-trapping loop with a child: SIGKILLed after the grace period", async () => {
    const result = await runCode("bash", program("sigterm-trap.sh"), {
      limits: { timeoutMs: 500, killGraceMs: 300 },
    });
    expect(result).toMatchObject({ status: "timeout", signal: "SIGKILL" });
    expect(result.metrics.executionTimeMs).toBeGreaterThanOrEqual(800);
  });

  it("setsid + double-fork daemon does not outlive the program", async () => {
    const result = await runCode("python", program("daemon.py"));
    expect(result).toMatchObject({ status: "completed", stdout: "parent leaving\n" });
    // runCode has already checked that no process of the sandbox's uid survives.
  });

  it("a background job holding stdout open does not hang the run", async () => {
    const result = await runCode("bash", "sleep 600 &\necho started", {
      limits: { timeoutMs: 10_000 },
    });
    expect(result).toMatchObject({ status: "completed", stdout: "started\n" });
    expect(result.metrics.executionTimeMs).toBeLessThan(10_000);
  });
});
