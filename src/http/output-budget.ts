/**
 * Stored output is loaded whole to answer a finished execution's GET or event
 * stream, and a reader that reads slowly holds it for as long as it likes. So
 * one key could open dozens of readers of one run with 128 MiB of output and
 * make Warden hold gigabytes. Every such load takes its bytes from this budget
 * first (the whole server's; a key's reads beyond its first, at most a quarter
 * of it) and gives
 * them back when the answer is done; past it the request is refused at once,
 * retryable, instead of growing Warden's memory.
 */
import { WardenError } from "../errors.js";

/**
 * What one stored byte may cost while it is answered: the BLOB, and the string
 * decoded from it, two bytes a character where the output was not Latin-1
 * (0xFF is stored for each U+FFFD).
 */
export const COST_PER_BYTE = 3;

export class OutputBudget {
  private used = 0;
  private readonly byKey = new Map<string, number>();

  constructor(private readonly totalBytes: number) {}

  /** Takes `bytes` of stored output for `key`; the returned function gives them back (once). */
  take(key: string, bytes: number): () => void {
    const cost = bytes * COST_PER_BYTE;
    const mine = this.byKey.get(key) ?? 0;
    // A key's first read only needs room in the total; more reads at once, a quarter of it.
    // One read larger than the whole budget still goes when nothing else is read,
    // so every result can be fetched: the bound is the budget or that one read.
    const overShare = mine > 0 && mine + cost > this.totalBytes / 4;
    const overTotal = this.used > 0 && this.used + cost > this.totalBytes;
    if (cost > 0 && (overTotal || overShare))
      throw new WardenError(
        "SANDBOX_BUSY",
        `too much stored output is being sent right now (maxOutputInFlightMb); retry when your other reads of results finish`,
        { details: { retryAfterSeconds: 5 } },
      );
    this.used += cost;
    this.byKey.set(key, mine + cost);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.used -= cost;
      const left = (this.byKey.get(key) ?? cost) - cost;
      if (left > 0) this.byKey.set(key, left);
      else this.byKey.delete(key);
    };
  }
}
