import { describe, expect, it } from "vitest";
import { detectCgroupLayout, parseMountInfo } from "../../src/sandbox/cgroups/detect.js";

const line = (id: number, mount: string, fs: string, opts: string): string =>
  `${id} 23 0:${id} / ${mount} rw,relatime shared:1 - ${fs} ${fs} ${opts}`;

// This machine's shape: v1 controllers and an empty unified mount.
const hybrid = [
  line(31, "/sys/fs/cgroup", "tmpfs", "rw,mode=755"),
  line(32, "/sys/fs/cgroup/cpu", "cgroup", "rw,cpu"),
  line(33, "/sys/fs/cgroup/cpuacct", "cgroup", "rw,cpuacct"),
  line(35, "/sys/fs/cgroup/memory", "cgroup", "rw,memory"),
  line(37, "/sys/fs/cgroup/freezer", "cgroup", "rw,freezer"),
  line(39, "/sys/fs/cgroup/pids", "cgroup", "rw,pids"),
  line(41, "/sys/fs/cgroup/unified", "cgroup2", "rw"),
].join("\n");

describe("cgroup layout detection", () => {
  it("parses mountinfo, unescaping paths", () => {
    const [m] = parseMountInfo(line(1, "/mnt/with\\040space", "tmpfs", "rw"));
    expect(m).toEqual({ mountPoint: "/mnt/with space", fsType: "tmpfs", superOptions: ["rw"] });
  });

  it("drives a hybrid host (empty unified mount) through v1", () => {
    const layout = detectCgroupLayout(hybrid, () => "");
    expect(layout.mode).toBe("hybrid");
    expect(layout.v1Mounts).toMatchObject({
      memory: "/sys/fs/cgroup/memory",
      pids: "/sys/fs/cgroup/pids",
      cpu: "/sys/fs/cgroup/cpu",
      cpuacct: "/sys/fs/cgroup/cpuacct",
      freezer: "/sys/fs/cgroup/freezer",
    });
  });

  it("recognises pure v1 and a combined cpu,cpuacct hierarchy", () => {
    const v1 = [
      line(2, "/sys/fs/cgroup/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct"),
      line(3, "/sys/fs/cgroup/memory", "cgroup", "rw,memory"),
      line(4, "/sys/fs/cgroup/pids", "cgroup", "rw,pids"),
    ].join("\n");
    const layout = detectCgroupLayout(v1, () => "");
    expect(layout.mode).toBe("v1");
    expect(layout.v1Mounts.cpu).toBe(layout.v1Mounts.cpuacct);
  });

  it("prefers v2 when the unified hierarchy has the controllers", () => {
    const layout = detectCgroupLayout(
      line(5, "/sys/fs/cgroup", "cgroup2", "rw"),
      () => "cpuset cpu io memory pids\n",
    );
    expect(layout).toMatchObject({ mode: "v2", unifiedMount: "/sys/fs/cgroup" });
    expect(layout.unifiedControllers).toContain("memory");
  });

  it("reports what is missing when no hierarchy is usable", () => {
    const layout = detectCgroupLayout(line(6, "/sys/fs/cgroup/cpu", "cgroup", "rw,cpu"), () => "");
    expect(layout.mode).toBe("none");
    expect(layout.missing).toEqual(["memory", "pids"]);
  });
});
