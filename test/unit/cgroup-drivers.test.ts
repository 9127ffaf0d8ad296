/**
 * The cgroup drivers against a fake cgroupfs in a temp dir: this host has no
 * controllers on v2, so the v2 driver's file protocol is checked here (and
 * v1's too, beside the real-hierarchy integration tests).
 */
import { mkdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fakeRoot, read } from "../helpers/fake-cgroupfs.js";
import { cpuQuotaUs } from "../../src/sandbox/cgroups/cgroup.js";
import { CgroupV1Driver } from "../../src/sandbox/cgroups/v1.js";
import { CgroupV2Driver } from "../../src/sandbox/cgroups/v2.js";

describe("cpu quota", () => {
  it("is a share of all cores", () => {
    expect(cpuQuotaUs(50, 2)).toBe(100_000);
    expect(cpuQuotaUs(80, 4)).toBe(320_000);
    expect(cpuQuotaUs(0.001, 1)).toBe(1000);
  });
});

describe("cgroup v2 driver", () => {
  it("delegates controllers, writes limits with swap off and reads accounting", async () => {
    const root = fakeRoot();
    const driver = new CgroupV2Driver(root, "warden", ["cpu", "memory", "pids"], 2);
    const group = await driver.create("b1-2-abc-1", {
      memoryBytes: 64 << 20,
      pids: 32,
      cpuPercent: 50,
    });
    expect(read(root, "cgroup.subtree_control")).toBe("+memory +pids +cpu");
    expect(read(root, "warden", "cgroup.subtree_control")).toBe("+memory +pids +cpu");
    const dir = join(root, "warden", "b1-2-abc-1");
    expect(read(dir, "memory.max")).toBe(String(64 << 20));
    expect(read(dir, "memory.swap.max")).toBe("0");
    expect(read(dir, "memory.oom.group")).toBe("1");
    expect(read(dir, "pids.max")).toBe("32");
    expect(read(dir, "cpu.max")).toBe("100000 100000");
    expect(group.procsFiles).toEqual([join(dir, "cgroup.procs")]);

    writeFileSync(join(dir, "cpu.stat"), "usage_usec 12345\nuser_usec 10000\n");
    writeFileSync(join(dir, "memory.peak"), "4096\n");
    writeFileSync(join(dir, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    writeFileSync(join(dir, "pids.events"), "max 7\n");
    expect(await group.accounting()).toEqual({
      cpuTimeMs: 12,
      peakMemoryBytes: 4096,
      oomKills: 1,
      pidsMaxEvents: 7,
    });
    expect(await driver.list()).toEqual(["b1-2-abc-1"]);
  });
});

describe("cgroup v1 driver", () => {
  it("writes each controller's files, joins every hierarchy once and reads accounting", async () => {
    const root = fakeRoot();
    const mounts = {
      memory: join(root, "memory"),
      pids: join(root, "pids"),
      cpu: join(root, "cpu,cpuacct"),
      cpuacct: join(root, "cpu,cpuacct"),
    };
    for (const m of new Set(Object.values(mounts))) mkdirSync(m);
    const driver = new CgroupV1Driver(mounts, "warden", 2);
    const group = await driver.create("b1-2-abc-1", {
      memoryBytes: 1 << 20,
      pids: 16,
      cpuPercent: 25,
    });
    const mem = join(mounts.memory, "warden", "b1-2-abc-1");
    const cpu = join(mounts.cpu, "warden", "b1-2-abc-1");
    expect(read(mem, "memory.limit_in_bytes")).toBe(String(1 << 20));
    // memsw is written only where the kernel offers it (ENOENT is ignored on a real cgroupfs);
    // on a plain directory the file simply gets created.
    expect(existsSync(join(mem, "memory.memsw.limit_in_bytes"))).toBe(true);
    expect(read(join(mounts.pids, "warden", "b1-2-abc-1"), "pids.max")).toBe("16");
    expect(read(cpu, "cpu.cfs_quota_us")).toBe("50000");
    expect(read(cpu, "cpu.cfs_period_us")).toBe("100000");
    expect(group.procsFiles).toHaveLength(3);

    writeFileSync(join(cpu, "cpuacct.usage"), "2500000000\n");
    writeFileSync(join(mem, "memory.max_usage_in_bytes"), "8192\n");
    writeFileSync(join(mem, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    expect(await group.accounting()).toEqual({
      cpuTimeMs: 2500,
      peakMemoryBytes: 8192,
      oomKills: 2,
      pidsMaxEvents: 0,
    });
    writeFileSync(join(mounts.pids, "warden", "b1-2-abc-1", "pids.events"), "max 3\n");
    expect((await group.accounting()).pidsMaxEvents).toBe(3);
  });
});
