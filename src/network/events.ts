/**
 * What the egress proxy reports, and the throttle on refusals.
 *
 * Every event becomes an audit row and a log line. Allowed connections are
 * few (at most the run's connection cap), but refusals cost the program
 * nothing to provoke, so a loop of refused attempts would otherwise be a
 * loop of disk writes in Warden. The first few refusals of a run are reported
 * one by one (that is what a person debugging an allowlist needs); after that
 * they are counted by reason and host and reported as one summary event per
 * interval, and once more when the run's proxy closes.
 */

export interface EgressSummaryRow {
  reason: string;
  host: string;
  count: number;
}

export interface EgressEvent {
  decision: "allowed" | "denied";
  /** The name asked for (made printable and cut to 100 characters if it was refused), or `*` on a summary. */
  host: string;
  port: number;
  /** `unknown` when refused before the protocol was known; `summary` for a batch of refusals. */
  protocol: "http" | "connect" | "socks5" | "unknown" | "summary";
  reason: string | null;
  /** Bytes both ways; reported when an allowed connection ends. */
  bytes: number;
  address: string | null;
  /** Attempts this event stands for: 1, or the number of refusals a summary covers. */
  count: number;
  /** On a summary: counts by reason and host, busiest first. */
  summary?: EgressSummaryRow[];
}

export type Refusal = Pick<EgressEvent, "host" | "port" | "protocol" | "reason" | "address">;

export interface RefusalReporterOptions {
  /** Refusals reported one by one before summarising. @default 10 */
  first: number;
  /** At most one summary per interval. @default 10_000 */
  intervalMs: number;
  /** Rows in one summary; the rest are added up in one `(other)` row. @default 20 */
  rows: number;
}

/** Distinct reason/host pairs held between summaries; past this, new ones fold into one row. */
const MAX_KEYS = 200;

export class RefusalReporter {
  private reported = 0;
  private pending = new Map<string, EgressSummaryRow>();
  private pendingTotal = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly o: RefusalReporterOptions;

  constructor(
    private readonly emit: (event: EgressEvent) => void,
    options: Partial<RefusalReporterOptions> = {},
  ) {
    this.o = { first: 10, intervalMs: 10_000, rows: 20, ...options };
  }

  refuse(r: Refusal): void {
    if (this.reported < this.o.first) {
      this.reported++;
      this.emit({ ...r, decision: "denied", bytes: 0, count: 1 });
      return;
    }
    let reason = r.reason ?? "refused";
    let host = r.host;
    let key = `${reason}\0${host}`;
    // Hosts are the program's choice: past MAX_KEYS new pairs share one row.
    if (!this.pending.has(key) && this.pending.size >= MAX_KEYS) {
      reason = "(other)";
      host = "*";
      key = `${reason}\0${host}`;
    }
    const row = this.pending.get(key);
    if (row) row.count++;
    else this.pending.set(key, { reason, host, count: 1 });
    this.pendingTotal++;
    this.timer ??= setTimeout(() => this.flush(), this.o.intervalMs).unref();
  }

  /** Reports what is pending as one summary event (nothing if nothing is pending). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pendingTotal === 0) return;
    const sorted = [...this.pending.values()].sort((a, b) => b.count - a.count);
    const summary = sorted.slice(0, this.o.rows);
    const rest = sorted.slice(this.o.rows).reduce((n, row) => n + row.count, 0);
    if (rest > 0) summary.push({ reason: "(other)", host: "*", count: rest });
    const count = this.pendingTotal;
    this.pending = new Map();
    this.pendingTotal = 0;
    this.emit({
      decision: "denied",
      host: "*",
      port: 0,
      protocol: "summary",
      reason: `${count} more refusals, counted by reason and host`,
      bytes: 0,
      address: null,
      count,
      summary,
    });
  }
}
