/**
 * Pausing through the cgroup freezer, against a fake cgroupfs: v2 writes
 * cgroup.freeze and waits for `frozen 1` in cgroup.events; v1 writes
 * freezer.state and waits until it reads FROZEN (not FREEZING). The real v1
 * hierarchy is exercised by test/sessions/pause.test.ts.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fakeRoot, read } from "../helpers/fake-cgroupfs.js";
import { CgroupV1Driver } from "../../src/sandbox/cgroups/v1.js";
import { CgroupV2Driver } from "../../src/sandbox/cgroups/v2.js";

const limits = { memoryBytes: 64 << 20, pids: 32, cpuPercent: 50 };

describe("cgroup v2 freezer", () => {
  it("freezes, waits for the kernel's `frozen 1`, and thaws", async () => {
    const root = fakeRoot();
    const group = await new CgroupV2Driver(root, "warden", ["memory", "pids"], 2).create(
      "b1",
      limits,
    );
    const dir = join(root, "warden", "b1");
    writeFileSync(join(dir, "cgroup.events"), "populated 1\nfrozen 0\n");
    let done = false;
    const freezing = group.freeze(5000).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(read(dir, "cgroup.freeze")).toBe("1");
    expect(done, "not before the kernel says frozen").toBe(false);
    writeFileSync(join(dir, "cgroup.events"), "populated 1\nfrozen 1\n");
    await freezing;
    await group.thaw();
    expect(read(dir, "cgroup.freeze")).toBe("0");
  });

  it("gives up past its timeout and thaws again", async () => {
    const root = fakeRoot();
    const group = await new CgroupV2Driver(root, "warden", ["memory", "pids"], 2).create(
      "b1",
      limits,
    );
    const dir = join(root, "warden", "b1");
    writeFileSync(join(dir, "cgroup.events"), "populated 1\nfrozen 0\n");
    await expect(group.freeze(50)).rejects.toThrow(/did not freeze within 50 ms/);
    expect(read(dir, "cgroup.freeze")).toBe("0");
  });
});

describe("cgroup v1 freezer", () => {
  it("writes FROZEN, waits while the kernel reads FREEZING, and thaws", async () => {
    const root = fakeRoot();
    const mounts = {
      memory: join(root, "memory"),
      pids: join(root, "pids"),
      freezer: join(root, "freezer"),
    };
    for (const m of Object.values(mounts)) mkdirSync(m);
    const group = await new CgroupV1Driver(mounts, "warden", 2).create("b1", limits);
    const state = join(mounts.freezer, "warden", "b1", "freezer.state");
    // A fake kernel: what is written reads back as FREEZING for a while.
    let done = false;
    const freezing = group.freeze(5000).then(() => (done = true));
    expect(read(state)).toBe("FROZEN");
    writeFileSync(state, "FREEZING\n");
    await new Promise((r) => setTimeout(r, 30));
    expect(done).toBe(false);
    writeFileSync(state, "FROZEN\n");
    await freezing;
    await group.thaw();
    expect(read(state)).toBe("THAWED");
  });

  it("says clearly when there is no freezer to pause with", async () => {
    const root = fakeRoot();
    const mounts = { memory: join(root, "memory"), pids: join(root, "pids") };
    for (const m of Object.values(mounts)) mkdirSync(m);
    const group = await new CgroupV1Driver(mounts, "warden", 2).create("b1", limits);
    await expect(group.freeze()).rejects.toThrow(/no freezer controller/);
  });
});
