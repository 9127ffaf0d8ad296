/**
 * The host's memory budget, in one of two modes.
 *
 * `reserve` (the default): every running execution holds its whole memory
 * limit, so the sum of limits never exceeds the budget. Nothing can run the
 * host short, but a thousand sleepers with a 512 MiB limit each would need
 * half a terabyte of budget while using a few GiB.
 *
 * `usage`: an execution holds only `admissionMb` when it starts; once it has
 * run for a poll interval, what counts for it is what the kernel says it uses
 * (one read of Warden's parent cgroup, which sums every sandbox below it).
 * This overcommits: the limits may add up to more than the host has, and if
 * many sandboxes grow to their limits at once the host can run short. Each
 * sandbox's own cgroup limit still holds (a hog is OOM-killed inside its box),
 * and admission stops as soon as the measured use nears the budget.
 *
 * Memory held for things that are not executions (a session, a pooled box)
 * is always reserved in full; in `usage` mode their use is also in the kernel's
 * figure, so they count twice: conservative, never short.
 */
export type MemoryBudgetMode = "reserve" | "usage";

export interface MemoryBudgetOptions {
  budgetMb: number;
  mode: MemoryBudgetMode;
  /** `usage` mode: what a new execution holds until the kernel's figure includes it. */
  admissionMb: number;
  /** `usage` mode: how often the kernel's figure is read while executions run. */
  pollMs: number;
  /** Memory every sandbox uses now, from the kernel (MiB). */
  readUsageMb: () => Promise<number>;
  /** Called when a new reading may have made room (the scheduler starts waiting work). */
  onRoom: () => void;
  /** Called once when a reading fails (the last good figure stays). */
  onReadError?: (error: unknown) => void;
}

interface Pending {
  mb: number;
  at: number;
}

export class MemoryBudget {
  /** Reserved in full: every execution in `reserve` mode, and non-executions in both. */
  private heldMb = 0;
  /** `usage` mode: admissions the last reading does not include yet. */
  private readonly pending = new Set<Pending>();
  private live = 0;
  private sampledMb = 0;
  private timer: NodeJS.Timeout | undefined;
  private reading = false;
  private readFailed = false;

  constructor(private readonly o: MemoryBudgetOptions) {}

  get budgetMb(): number {
    return this.o.budgetMb;
  }

  get mode(): MemoryBudgetMode {
    return this.o.mode;
  }

  /** What the budget counts as taken now (MiB). */
  get committedMb(): number {
    let pending = 0;
    for (const p of this.pending) pending += p.mb;
    return this.heldMb + this.sampledMb + pending;
  }

  /** The kernel's last figure for all sandboxes (MiB); 0 in `reserve` mode. */
  get measuredMb(): number {
    return this.sampledMb;
  }

  /** What an execution with this memory limit takes from the budget when it starts. */
  costOf(limitMb: number): number {
    return this.o.mode === "reserve" ? limitMb : Math.min(limitMb, this.o.admissionMb);
  }

  fits(mb: number): boolean {
    return this.committedMb + mb <= this.o.budgetMb;
  }

  /** Takes an execution's share; the returned release gives it back (safe to call twice). */
  takeForExecution(limitMb: number): () => void {
    if (this.o.mode === "reserve") return this.hold(limitMb);
    const entry: Pending = { mb: this.costOf(limitMb), at: Date.now() };
    this.pending.add(entry);
    this.live++;
    this.arm();
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.pending.delete(entry);
      this.live--;
      if (this.live === 0) this.disarm();
      // Its use leaves the kernel's figure only at the next reading: read soon.
      else this.sampleSoon();
    };
  }

  /** Holds `mb` in full until released (safe to call twice). */
  hold(mb: number): () => void {
    this.heldMb += mb;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.heldMb -= mb;
    };
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sample(), this.o.pollMs);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // Nothing of ours runs: no stale reading may keep the next admissions out.
    this.sampledMb = 0;
  }

  private soon: NodeJS.Timeout | undefined;
  private sampleSoon(): void {
    // Coalesced: a burst of endings costs one read, at most every 50 ms.
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.sample();
    }, 50);
    this.soon.unref();
  }

  /** One bounded reading: never two at once, one file read whatever the number of sandboxes. */
  private async sample(): Promise<void> {
    if (this.reading || this.live === 0) return;
    this.reading = true;
    const startedAt = Date.now();
    try {
      const mb = await this.o.readUsageMb();
      if (this.live === 0) return;
      this.sampledMb = mb;
      this.readFailed = false;
      // An admission settles once it has run a whole interval before this reading began.
      for (const p of this.pending) if (p.at <= startedAt - this.o.pollMs) this.pending.delete(p);
      this.o.onRoom();
    } catch (error) {
      if (!this.readFailed) this.o.onReadError?.(error);
      this.readFailed = true;
    } finally {
      this.reading = false;
    }
  }

  close(): void {
    this.disarm();
    if (this.soon) clearTimeout(this.soon);
  }
}
