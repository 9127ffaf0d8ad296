/**
 * Refused requests are cheap to make (a bad key, a burst over the rate
 * limit, a malformed body), so they must be cheap to refuse: one audit row
 * and one log line each would let a client fill the disk and the log at line
 * rate. Each client address gets `refusalLogPerWindow` refusals of each kind
 * written in full per window; the rest are counted and become one summary
 * audit event (`refusals_suppressed`) when the window ends. Metrics still
 * count every refusal.
 */
import type { ConnectionLimits } from "../config/schema.js";
import { EventThrottle } from "../policy/rate-limit.js";
import type { NewEvent } from "../store/records.js";

/** How many distinct (kind, address) pairs are tracked before they share one bucket. */
const MAX_TRACKED = 1000;
const SEP = "\u0000";

export class RefusalLog {
  private readonly throttle: EventThrottle;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly audit: (event: NewEvent) => void,
    limits: Pick<ConnectionLimits, "refusalLogPerWindow" | "refusalLogWindowMs">,
  ) {
    this.throttle = new EventThrottle(
      limits.refusalLogPerWindow,
      limits.refusalLogWindowMs,
      MAX_TRACKED,
    );
    this.timer = setInterval(() => this.flush(false), limits.refusalLogWindowMs);
    this.timer.unref();
  }

  /** Audits (and logs) a refused request, unless this address used up its window. */
  record(ip: string, event: NewEvent): void {
    if (this.throttle.admit(`${event.event}${SEP}${ip}`)) this.audit(event);
  }

  /** Whether a plain log line about a refusal of `kind` from `ip` should be written. */
  shouldLog(ip: string, kind: string): boolean {
    return this.throttle.admit(`${kind}${SEP}${ip}`);
  }

  /** Writes one summary per (kind, address) that had refusals held back. */
  flush(all: boolean): void {
    for (const s of this.throttle.flush(all)) {
      const [kind = "refusal", ip = "(other clients)"] = s.key.includes(SEP)
        ? s.key.split(SEP)
        : [undefined, s.key];
      const seconds = Math.round(s.windowMs / 1000);
      this.audit({
        level: "warn",
        event: "refusals_suppressed",
        message: `${s.count} more ${kind} from ${ip} in ${seconds} s were counted, not recorded one by one`,
        data: { kind, ip, count: s.count, windowSeconds: seconds },
      });
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush(true);
  }
}
