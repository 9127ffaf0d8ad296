/**
 * The warm pool: boxes started ahead of their requests, per template (a
 * runtime with the limits that are fixed at start). A started box has its uid,
 * its cgroup joined, its workspace mounted, namespaces and seccomp in place,
 * and init (or a warm interpreter) waiting for the request, so a request that
 * takes one skips everything a cold start pays for, the kernel's RCU wait on
 * the first cgroup write included.
 *
 * One box, one execution: a taken box is never returned. The pool refills off
 * the request's path, sized per template by the recent arrival rate (enough
 * boxes to cover the arrivals while one is being started), within
 * `maxPerTemplate`, `maxBoxes` and `maxMemoryMb` (what started boxes really
 * use, read from their cgroups), and shrinks back when requests stop.
 */
import { performance } from "node:perf_hooks";
import type { Logger } from "../audit/logger.js";
import type { PoolStats } from "../contract/metrics.js";
import type { Isolation } from "../contract/isolation.js";
import type { BoxOptions, LaunchSpec, SandboxBox as Box } from "./box.js";

export type { PoolStats };

export interface PoolConfig {
  enabled: boolean;
  /** Started boxes per template at most. */
  maxPerTemplate: number;
  /** Started boxes in all at most. */
  maxBoxes: number;
  /** Memory that started boxes may hold together (their cgroups' real use). */
  maxMemoryMb: number;
  /** Boxes a prewarmed template keeps with no recent requests (others keep none). */
  idleBoxes: number;
  /** After this long without a request, a template keeps only `idleBoxes`. */
  idleMs: number;
}

export interface PoolTemplate {
  /** What makes boxes interchangeable: runtime and the limits fixed at start. */
  key: string;
  /** The tier is part of the template (gvisor keys start `gvisor|`, see isolatedKey). */
  box: BoxOptions & { isolation?: Isolation | undefined };
  launch: LaunchSpec;
}

/**
 * A template key for a tier: gVisor boxes are never interchangeable with
 * bubblewrap ones, nor across platforms (`gvisor|<key>|<platform>`).
 */
export function isolatedKey(key: string, isolation: Isolation, platform: string | null): string {
  return isolation === "gvisor" ? `gvisor|${key}|${platform ?? "none"}` : key;
}

interface Slot {
  template: PoolTemplate;
  ready: Box[];
  starting: number;
  /** Request arrival times (ms) within the window. */
  arrivals: number[];
  /** How long a start takes (ms), smoothed. */
  startMs: number;
  /** Memory one started box uses (bytes), as last measured. */
  boxBytes: number;
  hits: number;
  misses: number;
  /** No starts before this time (ms) after a failed one. */
  pausedUntil: number;
  /** Boxes kept with no recent requests: `idleBoxes` for prewarmed templates, else none. */
  floor: number;
}

const WINDOW_MS = 10_000;
/** Starts in flight at once: each costs a core for a few milliseconds. */
const PARALLEL_STARTS = 2;
const FAILURE_PAUSE_MS = 5_000;
/** Templates tracked at most; the least recently used one goes first. */
const MAX_TEMPLATES = 16;

export interface PoolHost {
  prepare(options: BoxOptions & { isolation?: Isolation | undefined }): Promise<Box>;
}

/**
 * Asked before a start: whether `bytes` more may be held by the pool now (the
 * service's memory budget, where started boxes count like running ones).
 */
export type PoolMemoryGate = (bytes: number) => boolean;

export class WarmPool {
  private readonly slots = new Map<string, Slot>();
  private inFlight = 0;
  private closed = false;
  private readonly starts = new Set<Promise<void>>();
  private readonly trim: NodeJS.Timeout;
  /** The service's say on memory; until one is set, only `maxMemoryMb` bounds the pool. */
  memoryGate: PoolMemoryGate = () => true;

  constructor(
    private readonly host: PoolHost,
    private readonly config: PoolConfig,
    private readonly logger: Logger,
  ) {
    this.trim = setInterval(() => this.shrink(), Math.max(1000, config.idleMs / 2));
    this.trim.unref();
  }

  /** Starts `idleBoxes` boxes of a template before any request asks for one. */
  prewarm(template: PoolTemplate): void {
    if (!this.config.enabled) return;
    const slot = this.slotFor(template);
    slot.floor = this.config.idleBoxes;
    this.refill(slot);
  }

  /**
   * A started box of this template, or undefined (the caller runs cold). The
   * arrival counts towards the template's size either way.
   */
  take(template: PoolTemplate): Box | undefined {
    if (!this.config.enabled || this.closed) return undefined;
    const slot = this.slotFor(template);
    slot.arrivals.push(performance.now());
    const box = slot.ready.shift();
    if (box) slot.hits++;
    else slot.misses++;
    this.refill(slot);
    return box;
  }

  stats(): PoolStats[] {
    return [...this.slots.values()].map((s) => ({
      key: s.template.key,
      ready: s.ready.length,
      starting: s.starting,
      target: this.target(s),
      hits: s.hits,
      misses: s.misses,
      memoryBytes: s.ready.length * s.boxBytes,
    }));
  }

  /** Memory held by started boxes (bytes), for the scheduler's budget. */
  memoryBytes(): number {
    let total = 0;
    for (const s of this.slots.values()) total += (s.ready.length + s.starting) * s.boxBytes;
    return total;
  }

  /** Stops refilling and destroys every started box. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.trim);
    await Promise.all([...this.starts]);
    const boxes = [...this.slots.values()].flatMap((s) => s.ready.splice(0));
    await Promise.all(boxes.map((b) => b.destroy()));
  }

  private slotFor(template: PoolTemplate): Slot {
    let slot = this.slots.get(template.key);
    if (slot) {
      // Map order is recency order: the least recently used template is first.
      this.slots.delete(template.key);
      this.slots.set(template.key, slot);
      return slot;
    }
    slot = {
      template,
      ready: [],
      starting: 0,
      arrivals: [],
      startMs: 50,
      boxBytes: 16 * 1024 * 1024,
      hits: 0,
      misses: 0,
      pausedUntil: 0,
      floor: 0,
    };
    this.slots.set(template.key, slot);
    if (this.slots.size > MAX_TEMPLATES) {
      const [oldest] = this.slots.values();
      if (oldest) this.drop(oldest);
    }
    return slot;
  }

  private drop(slot: Slot): void {
    this.slots.delete(slot.template.key);
    for (const box of slot.ready.splice(0)) void box.destroy();
  }

  /** Boxes this template should have ready: its arrivals during one start, twice over, plus one. */
  private target(slot: Slot): number {
    const now = performance.now();
    while (slot.arrivals.length > 0 && slot.arrivals[0]! < now - WINDOW_MS) slot.arrivals.shift();
    if (slot.arrivals.length === 0) return Math.min(slot.floor, this.config.maxPerTemplate);
    const perMs = slot.arrivals.length / WINDOW_MS;
    const wanted = Math.ceil(perMs * slot.startMs * 2) + 1;
    return Math.min(Math.max(wanted, slot.floor), this.config.maxPerTemplate);
  }

  private boxes(): number {
    let n = 0;
    for (const s of this.slots.values()) n += s.ready.length + s.starting;
    return n;
  }

  private refill(slot: Slot): void {
    if (this.closed || performance.now() < slot.pausedUntil) return;
    const target = this.target(slot);
    while (
      slot.ready.length + slot.starting < target &&
      this.inFlight < PARALLEL_STARTS &&
      this.boxes() < this.config.maxBoxes &&
      this.memoryBytes() + slot.boxBytes <= this.config.maxMemoryMb * 1024 * 1024 &&
      this.memoryGate(slot.boxBytes)
    ) {
      const start = this.start(slot);
      this.starts.add(start);
      void start.finally(() => {
        this.starts.delete(start);
        // A finished start frees a place: the most recently used template that wants one gets it.
        for (const s of [...this.slots.values()].reverse()) this.refill(s);
      });
    }
  }

  private async start(slot: Slot): Promise<void> {
    slot.starting++;
    this.inFlight++;
    const began = performance.now();
    let box: Box | undefined;
    try {
      box = await this.host.prepare(slot.template.box);
      await box.prestart(slot.template.launch);
      slot.startMs = slot.startMs * 0.8 + (performance.now() - began) * 0.2;
      const used = await box.startedMemoryBytes();
      if (used > 0) slot.boxBytes = used;
      if (this.closed || this.slots.get(slot.template.key) !== slot) await box.destroy();
      else slot.ready.push(box);
    } catch (error) {
      slot.pausedUntil = performance.now() + FAILURE_PAUSE_MS;
      this.logger.warn(
        { template: slot.template.key, reason: (error as Error).message },
        "warm pool start failed",
      );
      await box?.destroy().catch(() => undefined);
    } finally {
      slot.starting--;
      this.inFlight--;
    }
  }

  /** Templates without recent requests give back what they hold beyond `idleBoxes`. */
  private shrink(): void {
    const now = performance.now();
    for (const slot of [...this.slots.values()]) {
      const last = slot.arrivals.at(-1) ?? 0;
      if (now - last < this.config.idleMs) continue;
      const extra = slot.ready.splice(Math.min(slot.floor, slot.ready.length));
      for (const box of extra) void box.destroy();
      if (slot.ready.length === 0 && slot.starting === 0 && slot.floor === 0)
        this.slots.delete(slot.template.key);
    }
  }
}
