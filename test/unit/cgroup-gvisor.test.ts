/**
 * The gVisor tier's cgroup pieces against a fake cgroupfs: the overheads, and
 * the sweep of the cgroups runsc makes in v1 hierarchies Warden does not drive.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fakeRoot } from "../helpers/fake-cgroupfs.js";
import { detectCgroupLayout } from "../../src/sandbox/cgroups/detect.js";
import { gvisorLimits } from "../../src/sandbox/cgroups/gvisor.js";
import { selects } from "../../src/sandbox/cgroups/cgroup.js";
import { CgroupV1Driver } from "../../src/sandbox/cgroups/v1.js";
import { CgroupV2Driver } from "../../src/sandbox/cgroups/v2.js";

const line = (id: number, mount: string, fs: string, opts: string): string =>
  `${id} 23 0:${id} / ${mount} rw,relatime shared:1 - ${fs} ${fs} ${opts}`;

describe("gVisor cgroup limits", () => {
  it("adds the Sentry's memory and doubles pids plus the overhead; CPU unchanged", () => {
    const limits = { memoryBytes: 256 << 20, pids: 64, cpuPercent: 50 };
    expect(gvisorLimits(limits, { memoryOverheadMb: 32, pidsOverhead: 128 })).toEqual({
      memoryBytes: (256 + 32) << 20,
      pids: 256,
      cpuPercent: 50,
    });
  });
});

describe("cgroup selectors", () => {
  it("take a name or a dash-ended prefix, never a longer run number", () => {
    expect(selects("b1-2-ab-3", "b1-2-ab-3")).toBe(true);
    expect(selects("b1-2-ab-3", "b1-2-ab-30")).toBe(false);
    expect(selects("b1-2", "b1-2-ab-3")).toBe(true);
    expect(selects("b1-2", "b1-22-ab-3")).toBe(false);
    expect(selects((n) => n.endsWith("-3"), "b1-2-ab-3")).toBe(true);
  });
});

describe("v1 layout", () => {
  it("lists every v1 hierarchy, the ones Warden does not drive too", () => {
    const info = [
      line(1, "/sys/fs/cgroup/systemd", "cgroup", "rw,xattr,name=systemd"),
      line(2, "/sys/fs/cgroup/memory", "cgroup", "rw,memory"),
      line(3, "/sys/fs/cgroup/pids", "cgroup", "rw,pids"),
      line(4, "/sys/fs/cgroup/blkio", "cgroup", "rw,blkio"),
      line(5, "/sys/fs/cgroup/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct"),
    ].join("\n");
    const layout = detectCgroupLayout(info, () => "");
    expect(layout.v1Hierarchies).toEqual([
      "/sys/fs/cgroup/systemd",
      "/sys/fs/cgroup/memory",
      "/sys/fs/cgroup/pids",
      "/sys/fs/cgroup/blkio",
      "/sys/fs/cgroup/cpu,cpuacct",
    ]);
  });
});

describe("sweepForeign", () => {
  it("v1: removes the selected names in every hierarchy, driven or not, and nothing else", async () => {
    const root = fakeRoot();
    const driven = { memory: join(root, "memory"), pids: join(root, "pids") };
    const foreign = ["blkio", "cpuset", "devices", "systemd"].map((h) => join(root, h));
    const all = [...Object.values(driven), ...foreign];
    // What a killed runsc leaves: the dead owner's run in every hierarchy, and
    // the parent in the ones only runsc made; a live owner's box beside it.
    for (const h of all) {
      mkdirSync(join(h, "warden", "b1-2-dead-1"), { recursive: true });
      mkdirSync(join(h, "warden", "b3-4-live-1"), { recursive: true });
    }
    mkdirSync(join(root, "blkio", "warden", "b1-2-dead-2"));
    mkdirSync(join(root, "blkio", "warden", "not-ours"));
    const driver = new CgroupV1Driver(driven, "warden", 2, [...Object.values(driven), ...foreign]);
    expect(await driver.sweepForeign("b1-2")).toBe(all.length + 1);
    for (const h of all) {
      expect(existsSync(join(h, "warden", "b1-2-dead-1")), h).toBe(false);
      expect(existsSync(join(h, "warden", "b3-4-live-1")), h).toBe(true);
    }
    expect(existsSync(join(root, "blkio", "warden", "not-ours"))).toBe(true);
    // A predicate (the janitor's "owner is dead") works the same way.
    expect(await driver.sweepForeign((n) => n.startsWith("b3-4-"))).toBe(all.length);
    expect(await driver.sweepForeign("b1-2")).toBe(0);
  });

  it("v1: a hierarchy without Warden's parent is skipped", async () => {
    const root = fakeRoot();
    mkdirSync(join(root, "memory"));
    mkdirSync(join(root, "perf_event"));
    const driver = new CgroupV1Driver({ memory: join(root, "memory") }, "warden", 2, [
      join(root, "perf_event"),
    ]);
    expect(await driver.sweepForeign("b1-2")).toBe(0);
  });

  it("v1: a selected cgroup that cannot be removed is an error, never a silent skip", async () => {
    const root = fakeRoot();
    const dir = join(root, "devices", "warden", "b1-2-dead-1");
    mkdirSync(dir, { recursive: true });
    // A plain directory holding a file cannot be rmdir'ed (cgroupfs can): the error surfaces.
    writeFileSync(join(dir, "cgroup.procs"), "");
    const driver = new CgroupV1Driver({}, "warden", 2, [join(root, "devices")]);
    await expect(driver.sweepForeign("b1-2")).rejects.toThrow(/ENOTEMPTY/);
  });

  it("v2: runsc joins Warden's unified cgroup, so there is nothing extra", async () => {
    const root = fakeRoot();
    mkdirSync(join(root, "warden", "b1-2-dead-1"), { recursive: true });
    const driver = new CgroupV2Driver(root, "warden", ["memory", "pids"], 2);
    expect(await driver.sweepForeign("b1-2")).toBe(0);
    expect(existsSync(join(root, "warden", "b1-2-dead-1"))).toBe(true);
  });

  it("v2: pids.events feeds pidsMaxEvents", async () => {
    const root = fakeRoot();
    const driver = new CgroupV2Driver(root, "warden", ["memory", "pids"], 2);
    const group = await driver.create("b1-2-x-1", {
      memoryBytes: 1 << 20,
      pids: 8,
      cpuPercent: 10,
    });
    expect((await group.accounting()).pidsMaxEvents).toBe(0);
    writeFileSync(join(root, "warden", "b1-2-x-1", "pids.events"), "max 12\n");
    expect((await group.accounting()).pidsMaxEvents).toBe(12);
  });
});
