import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { access, mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CPU_PERIOD_US,
  FREEZE_TIMEOUT_MS,
  cpuQuotaUs,
  freezeAndWait,
  isErrno,
  killUntilEmpty,
  readKeyed,
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

/** cgroup v2: one unified directory per sandbox under `<mount>/<parent>`. */
export class CgroupV2Driver implements CgroupDriver {
  readonly version = "v2";
  private delegated = false;

  constructor(
    private readonly mount: string,
    private readonly parent: string,
    private readonly controllers: readonly string[],
    private readonly cpuCount: number,
  ) {}

  /** Enables our controllers for Warden's parent and its children (once). */
  private delegate(): void {
    if (this.delegated) return;
    const wanted = ["memory", "pids", "cpu"].filter((c) => this.controllers.includes(c));
    const enable = wanted.map((c) => `+${c}`).join(" ");
    const parentDir = join(this.mount, this.parent);
    writeFileSync(join(this.mount, "cgroup.subtree_control"), enable);
    mkdirSync(parentDir, { recursive: true });
    writeFileSync(join(parentDir, "cgroup.subtree_control"), enable);
    this.delegated = true;
  }

  open(name: string): Cgroup {
    return new CgroupV2(name, join(this.mount, this.parent, name), this.cpuCount, this.controllers);
  }

  /** The directory on the thread pool, control files synchronously (see cgroup.ts). */
  async create(name: string, limits: CgroupLimits): Promise<Cgroup> {
    this.delegate();
    const dir = join(this.mount, this.parent, name);
    await mkdir(dir);
    const group = new CgroupV2(name, dir, this.cpuCount, this.controllers);
    try {
      writeOptional(join(dir, "memory.swap.max"), "0");
      // An OOM kill takes the whole sandbox, never leaves half a program running.
      writeOptional(join(dir, "memory.oom.group"), "1");
      await group.setLimits(limits);
    } catch (error) {
      await group.destroy().catch(() => undefined);
      throw error;
    }
    return group;
  }

  async usageBytes(): Promise<number> {
    const dir = join(this.mount, this.parent);
    return workingSetBytes(join(dir, "memory.current"), join(dir, "memory.stat"), "inactive_file");
  }

  /** runsc joins the unified cgroup Warden made and makes none of its own: nothing extra. */
  async sweepForeign(_select: CgroupSelector): Promise<number> {
    return Promise.resolve(0);
  }

  async list(): Promise<string[]> {
    try {
      const entries = await readdir(join(this.mount, this.parent), { withFileTypes: true });
      return entries.filter((e) => e.isDirectory()).map((e) => e.name);
    } catch (error) {
      if (isErrno(error, "ENOENT")) return [];
      throw error;
    }
  }
}

class CgroupV2 implements Cgroup {
  readonly procsFiles: readonly string[];

  constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly cpuCount: number,
    private readonly controllers: readonly string[],
  ) {
    this.procsFiles = [join(dir, "cgroup.procs")];
  }

  setLimits(limits: CgroupLimits): Promise<void> {
    writeFileSync(join(this.dir, "memory.max"), String(limits.memoryBytes));
    writeFileSync(join(this.dir, "pids.max"), String(limits.pids));
    if (this.controllers.includes("cpu"))
      writeFileSync(
        join(this.dir, "cpu.max"),
        `${cpuQuotaUs(limits.cpuPercent, this.cpuCount)} ${CPU_PERIOD_US}`,
      );
    return Promise.resolve();
  }

  async pids(): Promise<number[]> {
    return readPids(join(this.dir, "cgroup.procs"));
  }

  async accounting(): Promise<CgroupAccounting> {
    const cpu = readKeyed(join(this.dir, "cpu.stat"));
    const events = readKeyed(join(this.dir, "memory.events"));
    const pidsEvents = readKeyed(join(this.dir, "pids.events"));
    return {
      cpuTimeMs: Math.round((cpu.usage_usec ?? 0) / 1000),
      peakMemoryBytes: readNumberOr(join(this.dir, "memory.peak"), 0),
      oomKills: events.oom_kill ?? 0,
      pidsMaxEvents: pidsEvents.max ?? 0,
    };
  }

  async usage(): Promise<{ memoryBytes: number; cpuTimeMs: number }> {
    const memoryBytes = readNumberOr(join(this.dir, "memory.current"), 0);
    const cpu = readKeyed(join(this.dir, "cpu.stat"));
    return { memoryBytes, cpuTimeMs: Math.round((cpu.usage_usec ?? 0) / 1000) };
  }

  async signal(signal: NodeJS.Signals, except?: ReadonlySet<number>): Promise<number> {
    return signalAll(readPids(join(this.dir, "cgroup.procs")), signal, except);
  }

  async killAll(): Promise<void> {
    const killFile = join(this.dir, "cgroup.kill");
    const hasKill = await access(killFile).then(
      () => true,
      () => false,
    );
    // cgroup.kill (Linux 5.14+) kills the whole tree atomically, forks included.
    await killUntilEmpty(
      () => this.pids(),
      hasKill ? () => writeFile(killFile, "1").catch(() => undefined) : undefined,
    );
  }

  /** cgroup.freeze 1; the kernel writes `frozen 1` to cgroup.events once every task has stopped. */
  async freeze(timeoutMs = FREEZE_TIMEOUT_MS): Promise<void> {
    const control = join(this.dir, "cgroup.freeze");
    await freezeAndWait(
      () => writeFileSync(control, "1"),
      () => readKeyed(join(this.dir, "cgroup.events")).frozen === 1,
      () => writeFileSync(control, "0"),
      timeoutMs,
    );
  }

  async thaw(): Promise<void> {
    writeOptional(join(this.dir, "cgroup.freeze"), "0");
    return Promise.resolve();
  }

  /** A frozen v2 cgroup still takes SIGKILL (and cgroup.kill): no thaw is needed to empty it. */
  async destroy(): Promise<void> {
    let populated = "";
    try {
      populated = readFileSync(join(this.dir, "cgroup.procs"), "utf8");
    } catch {
      // already gone
    }
    if (populated.trim()) await this.killAll();
    await removeDir(this.dir);
  }
}
