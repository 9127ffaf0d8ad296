/**
 * What a run used over its life, read from the kernel while it runs: the
 * cgroup's memory in use (v1 memory.usage_in_bytes, v2 memory.current) is
 * sampled every `intervalMs` and integrated into byte-milliseconds, and the
 * workspace tmpfs's use (statfs) gives the disk peak. Each sample is one
 * control-file read and one statfs: a few microseconds of kernel work.
 *
 * The integral holds each reading until the next one (the last one until
 * the run's end), so it never exceeds the peak times the wall time.
 */
import { statfs } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import type { Cgroup } from "./cgroups/cgroup.js";

/** @default sampling interval: fine enough for short runs, cheap for long ones. */
export const USAGE_SAMPLE_MS = 200;

export interface SampledUsage {
  /** Memory in use integrated over the run (bytes × milliseconds). */
  memoryByteMs: number;
  /** The highest memory reading (a floor under the kernel's own peak). */
  maxMemoryBytes: number;
  /** The highest use of the workspace tmpfs seen (bytes). */
  diskPeakBytes: number;
}

/** Bytes in use on the filesystem at `path` (a tmpfs: blocks used × block size), or null. */
export async function diskUsedBytes(path: string): Promise<number | null> {
  try {
    const s = await statfs(path);
    return Math.max(0, (s.blocks - s.bfree) * s.bsize);
  } catch {
    return null; // the box is going away
  }
}

export class UsageSampler {
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private lastAt = 0;
  private lastBytes = 0;
  private readonly usage: SampledUsage = { memoryByteMs: 0, maxMemoryBytes: 0, diskPeakBytes: 0 };
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly cgroup: Cgroup,
    /** The workspace as the host reaches it, when it does. */
    private readonly workspace: (() => string | null) | undefined,
    private readonly intervalMs = USAGE_SAMPLE_MS,
  ) {}

  start(): void {
    this.startedAt = this.lastAt = performance.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  /** One reading; readings never overlap (a slow statfs delays the next, never doubles it). */
  private sample(): void {
    this.pending = this.pending.then(async () => {
      const now = performance.now();
      const memory = await this.cgroup.usage().catch(() => null);
      this.usage.memoryByteMs += this.lastBytes * (now - this.lastAt);
      this.lastAt = now;
      if (memory) {
        this.lastBytes = memory.memoryBytes;
        this.usage.maxMemoryBytes = Math.max(this.usage.maxMemoryBytes, memory.memoryBytes);
      }
      const path = this.workspace?.();
      const disk = path ? await diskUsedBytes(path) : null;
      if (disk !== null) this.usage.diskPeakBytes = Math.max(this.usage.diskPeakBytes, disk);
    });
  }

  /**
   * Stops sampling; the last reading holds until `wallTimeMs` after the start
   * (the program's end), and nothing after it counts.
   */
  async stop(wallTimeMs: number, finalDiskBytes?: number | null): Promise<SampledUsage> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.pending;
    const end = this.startedAt + Math.max(0, wallTimeMs);
    if (end > this.lastAt) this.usage.memoryByteMs += this.lastBytes * (end - this.lastAt);
    this.lastAt = Math.max(this.lastAt, end);
    if (finalDiskBytes)
      this.usage.diskPeakBytes = Math.max(this.usage.diskPeakBytes, finalDiskBytes);
    // A reading taken between the program's end and this stop must not count past the end.
    this.usage.memoryByteMs = Math.min(
      this.usage.memoryByteMs,
      this.usage.maxMemoryBytes * Math.max(0, wallTimeMs),
    );
    return { ...this.usage };
  }
}
