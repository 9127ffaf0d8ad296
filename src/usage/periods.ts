/** Quota periods on UTC boundaries: when the current one began and when it resets. */
import type { QuotaPeriod } from "../store/quotas.js";

const DAY_MS = 86_400_000;

export function periodStart(period: QuotaPeriod, now: number): number {
  const d = new Date(now);
  return period === "day"
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** The moment the period containing `now` ends (its quota lifts). */
export function periodReset(period: QuotaPeriod, now: number): number {
  const d = new Date(now);
  return period === "day"
    ? periodStart("day", now) + DAY_MS
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}
