/**
 * `warden bench`, warm pool rows: a trivial run taken from a pre-warmed box,
 * engine-level and through REST, as ratios against the bare spawn measured in
 * the same run (targets: engine < 0.5x, REST < 1.0x).
 *
 * The pool itself is built elsewhere; this is the one place its rows join the
 * closing table. Until it exists there is nothing to measure.
 */
import type { SandboxHost } from "../sandbox/host.js";
import type { SummaryRow } from "./bench-summary.js";
import type { Stats } from "./measure.js";

export interface WarmBenchInput {
  host: SandboxHost;
  /** The same run's bare `python3 -c pass`, to divide by. */
  bare: Stats;
  runs: number;
}

export function warmLatencyRows(input: WarmBenchInput): Promise<SummaryRow[]> {
  void input;
  return Promise.resolve([]);
}
