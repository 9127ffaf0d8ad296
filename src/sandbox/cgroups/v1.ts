import { readFileSync, writeFileSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CPU_PERIOD_US,
  FREEZE_TIMEOUT_MS,
  cpuQuotaUs,
  freezeAndWait,
  isErrno,
  killUntilEmpty,
  readKeyed,
  readNumber,
  readNumberOr,
  readPids,
  removeDir,
  signalAll,
  workingSetBytes,
  writeOptional,
  type Cgroup,
  type CgroupAccounting,
  type CgroupDriver,
  type CgroupLimits,
  type CgroupSelector,
} from "./cgroup.js";
import { sweepHierarchies } from "./gvisor.js";

/**
 * cgroup v1: one directory per controller hierarchy. Also drives hybrid hosts,
 * where the controllers sit on v1 and the unified mount is empty.
 */
export class CgroupV1Driver implements CgroupDriver {
  readonly version = "v1";

  constructor(
    /** controller → hierarchy mount point (memory and pids at least). */
    private readonly mounts: Readonly<Record<string, string>>,
    private readonly parent: string,
    private readonly cpuCount: number,
    /** Every mounted v1 hierarchy, the ones Warden does not drive too (blkio, name=systemd...). */
    private readonly hierarchies: readonly string[] = [],
  ) {}

  async sweepForeign(select: CgroupSelector): Promise<number> {
    return sweepHierarchies(
      [...Object.values(this.mounts), ...this.hierarchies],
      this.parent,
      select,
    );
  }

  private dirsOf(name: string): Record<string, string> {
    const dirs: Record<string, string> = {};
    for (const [controller, mount] of Object.entries(this.mounts))
      dirs[controller] = join(mount, this.parent, name);
    return dirs;
  }

  open(name: string): Cgroup {
    return new CgroupV1(name, this.dirsOf(name), this.cpuCount);
  }

  async create(name: string, limits: CgroupLimits): Promise<Cgroup> {
    const group = new CgroupV1(name, this.dirsOf(name), this.cpuCount);
    try {
      await group.setUp(limits, this.cpuCount);
    } catch (error) {
      await group.destroy().catch(() => undefined);
      throw error;
    }
    return group;
  }

  async usageBytes(): Promise<number> {
    const memory = this.mounts.memory;
    if (!memory) throw new Error("no memory controller: usage cannot be measured");
    const dir = join(memory, this.parent);
    // total_*: the parent's stat counts its children only under the total_ keys.
    return workingSetBytes(
      join(dir, "memory.usage_in_bytes"),
      join(dir, "memory.stat"),
      "total_inactive_file",
    );
  }

  async list(): Promise<string[]> {
    const memory = this.mounts.memory;
    if (!memory) return [];
    try {
      const entries = await readdir(join(memory, this.parent), { withFileTypes: true });
      return entries.filter((e) => e.isDirectory()).map((e) => e.name);
    } catch (error) {
      if (isErrno(error, "ENOENT")) return [];
      throw error;
    }
  }
}

class CgroupV1 implements Cgroup {
  readonly procsFiles: readonly string[];
  private readonly uniqueDirs: string[];

  constructor(
    readonly name: string,
    private readonly dirs: Readonly<Record<string, string>>,
    private readonly cpuCount: number,
  ) {
    // cpu and cpuacct may share one hierarchy: join each directory once.
    this.uniqueDirs = [...new Set(Object.values(dirs))];
    this.procsFiles = this.uniqueDirs.map((d) => join(d, "cgroup.procs"));
  }

  /** Directories on the thread pool, control files synchronously (see cgroup.ts). */
  async setUp(limits: CgroupLimits, cpuCount: number): Promise<void> {
    await Promise.all(this.uniqueDirs.map((dir) => mkdir(dir, { recursive: true })));
    const { memory, pids, cpu } = this.dirs;
    if (memory) {
      writeFileSync(join(memory, "memory.limit_in_bytes"), String(limits.memoryBytes));
      // Swap off: memsw (where swap accounting is on) equals the memory limit.
      writeOptional(join(memory, "memory.memsw.limit_in_bytes"), String(limits.memoryBytes));
      writeOptional(join(memory, "memory.swappiness"), "0");
    }
    if (pids) writeFileSync(join(pids, "pids.max"), String(limits.pids));
    if (cpu) {
      writeFileSync(join(cpu, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
      writeFileSync(join(cpu, "cpu.cfs_quota_us"), String(cpuQuotaUs(limits.cpuPercent, cpuCount)));
    }
  }

  async setLimits(limits: CgroupLimits): Promise<void> {
    const { memory, pids, cpu } = this.dirs;
    if (memory) {
      // memsw may never be below the memory limit: lower the limit first, raise memsw first.
      const limit = join(memory, "memory.limit_in_bytes");
      const memsw = join(memory, "memory.memsw.limit_in_bytes");
      const value = String(limits.memoryBytes);
      if (limits.memoryBytes < readNumber(limit)) {
        writeFileSync(limit, value);
        writeOptional(memsw, value);
      } else {
        writeOptional(memsw, value);
        writeFileSync(limit, value);
      }
    }
    if (pids) writeFileSync(join(pids, "pids.max"), String(limits.pids));
    if (cpu)
      writeFileSync(
        join(cpu, "cpu.cfs_quota_us"),
        String(cpuQuotaUs(limits.cpuPercent, this.cpuCount)),
      );
    return Promise.resolve();
  }

  private pidsNow(): number[] {
    const any = this.dirs.pids ?? this.dirs.memory ?? this.uniqueDirs[0]!;
    return readPids(join(any, "cgroup.procs"));
  }

  async pids(): Promise<number[]> {
    return this.pidsNow();
  }

  async accounting(): Promise<CgroupAccounting> {
    const { memory, cpuacct, pids } = this.dirs;
    const cpuNs = cpuacct ? readNumberOr(join(cpuacct, "cpuacct.usage"), 0) : 0;
    const pidsEvents: Record<string, number> = pids ? readKeyed(join(pids, "pids.events")) : {};
    const peak = memory ? readNumberOr(join(memory, "memory.max_usage_in_bytes"), 0) : 0;
    const oom: Record<string, number> = memory ? readKeyed(join(memory, "memory.oom_control")) : {};
    return {
      cpuTimeMs: Math.round(cpuNs / 1e6),
      peakMemoryBytes: peak,
      oomKills: oom.oom_kill ?? 0,
      pidsMaxEvents: pidsEvents.max ?? 0,
    };
  }

  async usage(): Promise<{ memoryBytes: number; cpuTimeMs: number }> {
    const { memory, cpuacct } = this.dirs;
    const memoryBytes = memory ? readNumberOr(join(memory, "memory.usage_in_bytes"), 0) : 0;
    const cpuNs = cpuacct ? readNumberOr(join(cpuacct, "cpuacct.usage"), 0) : 0;
    return { memoryBytes, cpuTimeMs: Math.round(cpuNs / 1e6) };
  }

  async signal(signal: NodeJS.Signals, except?: ReadonlySet<number>): Promise<number> {
    return signalAll(this.pidsNow(), signal, except);
  }

  async killAll(): Promise<void> {
    const freezer = this.dirs.freezer;
    if (!freezer) return killUntilEmpty(() => this.pids());
    // Freeze first so a fork bomb cannot outrun the kill loop; thaw to let the kills land.
    const state = join(freezer, "freezer.state");
    await killUntilEmpty(
      () => this.pids(),
      async () => {
        await writeFile(state, "FROZEN").catch(() => undefined);
        for (let i = 0; i < 100; i++) {
          const now = await readFile(state, "utf8").catch(() => "FROZEN");
          if (now.trim() === "FROZEN") break;
          await sleep(1);
        }
      },
      async () => {
        await writeFile(state, "THAWED").catch(() => undefined);
      },
    );
  }

  /** freezer.state: FROZEN is asked; the kernel reads FREEZING until every task has stopped. */
  async freeze(timeoutMs = FREEZE_TIMEOUT_MS): Promise<void> {
    const freezer = this.dirs.freezer;
    if (!freezer) throw new Error("no freezer controller: mount the v1 freezer to pause sessions");
    const state = join(freezer, "freezer.state");
    await freezeAndWait(
      () => writeFileSync(state, "FROZEN"),
      () => readFileSync(state, "utf8").trim() === "FROZEN",
      () => writeFileSync(state, "THAWED"),
      timeoutMs,
    );
  }

  async thaw(): Promise<void> {
    const freezer = this.dirs.freezer;
    if (freezer) writeOptional(join(freezer, "freezer.state"), "THAWED");
    return Promise.resolve();
  }

  async destroy(): Promise<void> {
    // A frozen v1 task does not die of SIGKILL until thawed: killAll thaws
    // after each round, so a paused session's cgroup empties like any other.
    if (this.pidsNow().length > 0) await this.killAll();
    await Promise.all(this.uniqueDirs.map((dir) => removeDir(dir)));
  }
}
