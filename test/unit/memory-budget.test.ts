import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Scheduler, type SchedulerOptions } from "../../src/executions/scheduler.js";
import { blankResult, type ExecutionResult } from "../../src/contract/result.js";
import { CgroupV1Driver } from "../../src/sandbox/cgroups/v1.js";
import { CgroupV2Driver } from "../../src/sandbox/cgroups/v2.js";
import { loadConfig } from "../../src/config/load.js";
import { processLimitProblems } from "../../src/cli/process-limits.js";
import { smallRequest } from "../helpers/requests.js";

const MiB = 1024 * 1024;

function request(userId: string, memoryMb: number): ReturnType<typeof smallRequest> {
  return smallRequest(userId, { memoryMb });
}

/** Executions that run until `finishAll`. */
function sleepers() {
  const pending = new Map<string, () => void>();
  const run: SchedulerOptions["run"] = (execution) =>
    new Promise<ExecutionResult>((resolve) => {
      pending.set(execution.id, () =>
        resolve(blankResult(execution.id, "completed", null, { executionTimeMs: 1 })),
      );
    });
  const finishAll = (): void => {
    for (const end of pending.values()) end();
    pending.clear();
  };
  return { run, pending, finishAll };
}

function scheduler(o: Partial<SchedulerOptions>): Scheduler {
  return new Scheduler({
    maxConcurrent: 1000,
    maxPerUser: 1000,
    maxQueueSize: 1000,
    maxQueuedPerUser: 1000,
    queueTimeoutMs: 60_000,
    memoryBudgetMb: 1000,
    maxRetries: 0,
    retryBackoffMs: 1,
    reservationMb: (r) => r.limits.memoryMb,
    run: sleepers().run,
    ...o,
  });
}

afterEach(() => vi.useRealTimers());

describe("memory budget", () => {
  it("reserve mode (the default) holds each run's whole limit", () => {
    const runner = sleepers();
    const s = scheduler({ run: runner.run });
    for (let i = 0; i < 10; i++) s.submit(request(`u${i % 3}`, 256));
    expect(s.activeCount).toBe(3); // 3 × 256 ≤ 1000 < 4 × 256
    expect(s.queuedCount).toBe(7);
    expect(s.memoryReservedMb).toBe(768);
    runner.finishAll();
  });

  it("usage mode admits on a small reservation, then counts what the kernel measures", async () => {
    vi.useFakeTimers();
    const runner = sleepers();
    let usedMb = 0;
    const s = scheduler({
      run: runner.run,
      memory: { mode: "usage", admissionMb: 16, pollMs: 1000, readUsageMb: async () => usedMb },
    });
    for (let i = 0; i < 300; i++) s.submit(request(`u${i % 4}`, 256));
    // 62 × 16 ≤ 1000: far more than the 3 the limits allow in reserve mode.
    expect(s.activeCount).toBe(62);
    // The kernel says each uses 4 MiB: once the admissions settle, room for more opens.
    usedMb = 62 * 4;
    await vi.advanceTimersByTimeAsync(2100);
    expect(s.activeCount).toBeGreaterThan(62);
    expect(s.memoryReservedMb).toBeLessThanOrEqual(1000);
    // Measured use near the budget stops admission, whatever the reservations say.
    usedMb = 990;
    await vi.advanceTimersByTimeAsync(3100);
    const settled = s.activeCount;
    await vi.advanceTimersByTimeAsync(5000);
    expect(s.activeCount).toBe(settled);
    expect(s.queuedCount).toBe(300 - settled);
    runner.finishAll();
    await s.drain(0);
  });

  it("usage mode still refuses a limit the whole budget cannot hold", () => {
    const s = scheduler({
      memory: { mode: "usage", admissionMb: 16, pollMs: 1000, readUsageMb: async () => 0 },
    });
    expect(() => s.submit(request("u", 2000))).toThrow(/exceeds what this host can hold/);
  });

  it("a failing reading keeps the last figure and is reported once", async () => {
    vi.useFakeTimers();
    const runner = sleepers();
    const errors: unknown[] = [];
    const s = scheduler({
      run: runner.run,
      memory: {
        mode: "usage",
        admissionMb: 100,
        pollMs: 200,
        readUsageMb: () => Promise.reject(new Error("gone")),
        onReadError: (e) => errors.push(e),
      },
    });
    for (let i = 0; i < 20; i++) s.submit(request("u", 256));
    await vi.advanceTimersByTimeAsync(1000);
    expect(errors).toHaveLength(1);
    // Unsettled admissions keep counting: no more than the budget over admissions.
    expect(s.activeCount).toBe(10);
    runner.finishAll();
    await s.drain(0);
  });
});

describe("cgroup usage of Warden's parent", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("v1 reads the hierarchy's usage minus its inactive file cache", async () => {
    const root = mkdtempSync(join(tmpdir(), "warden-usage-"));
    dirs.push(root);
    const parent = join(root, "memory", "warden");
    mkdirSync(parent, { recursive: true });
    writeFileSync(join(parent, "memory.usage_in_bytes"), `${300 * MiB}\n`);
    writeFileSync(
      join(parent, "memory.stat"),
      `cache 0\ninactive_file 0\ntotal_cache ${200 * MiB}\ntotal_inactive_file ${120 * MiB}\n`,
    );
    const driver = new CgroupV1Driver({ memory: join(root, "memory") }, "warden", 2);
    expect(await driver.usageBytes()).toBe(180 * MiB);
  });

  it("v2 reads memory.current minus inactive_file", async () => {
    const root = mkdtempSync(join(tmpdir(), "warden-usage-"));
    dirs.push(root);
    mkdirSync(join(root, "warden"));
    writeFileSync(join(root, "warden", "memory.current"), `${64 * MiB}\n`);
    writeFileSync(join(root, "warden", "memory.stat"), `anon 1\ninactive_file ${4 * MiB}\n`);
    const driver = new CgroupV2Driver(root, "warden", ["memory"], 2);
    expect(await driver.usageBytes()).toBe(60 * MiB);
  });
});

describe("process limits at scale", () => {
  it("warns when the open files or pid caps fall short of the configured sandboxes", () => {
    const config = loadConfig({ env: {}, overrides: { maxConcurrentSandboxes: 1000 } });
    expect(processLimitProblems(config, { openFiles: 1_048_576, pidMax: 4_194_304 })).toEqual([]);
    const short = processLimitProblems(config, { openFiles: 4096, pidMax: 8192 });
    expect(short).toHaveLength(2);
    expect(short[0]).toMatch(/open files limit 4096 .* LimitNOFILE/);
    expect(short[1]).toMatch(/kernel\.pid_max 8192/);
    const narrow = loadConfig({ env: {}, overrides: { "sandbox.uidCount": 100 } });
    expect(processLimitProblems(narrow, { openFiles: 1e6, pidMax: 4e6 })).toEqual([
      expect.stringMatching(/uidCount 100 is below the 154 sandboxes/),
    ]);
  });
});
