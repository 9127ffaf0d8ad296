/**
 * `warden bench`'s closing table: each figure the issue sets a target for,
 * as a same-run ratio against a bare spawn where it has one, with its target.
 */
import type { HttpBenchResult } from "./bench-http.js";
import type { ScaleResult } from "./bench-scale.js";
import { round, type Stats } from "./measure.js";

export interface SummaryRow {
  figure: string;
  value: string;
  target: string;
}

export interface SummaryInput {
  /** `python3 -c pass` spawned bare, one after another. */
  bareLatency: Stats | null;
  /** Bare spawns per second from two parallel spawners. */
  bareRate2: number | null;
  /** The same run cold through the engine (full sandbox). */
  coldLatency: Stats | null;
  /** Rows the warm pool adds (src/cli/bench-warm.ts). */
  warm: SummaryRow[];
  http: HttpBenchResult | null;
  concurrency: number;
  scale: ScaleResult | null;
}

const ms = (s: Stats): string => `${s.medianMs} ms (p95 ${s.p95Ms})`;

export function summaryRows(i: SummaryInput): SummaryRow[] {
  const rows: SummaryRow[] = [];
  if (i.bareLatency)
    rows.push({ figure: "bare python3 -c pass, sequential", value: ms(i.bareLatency), target: "" });
  if (i.bareRate2 !== null)
    rows.push({ figure: "bare spawns/s, 2 spawners", value: `${i.bareRate2}/s`, target: "" });
  if (i.coldLatency && i.bareLatency)
    rows.push({
      figure: "cold engine run (python3 -c pass)",
      value: `${ms(i.coldLatency)} = ${round(i.coldLatency.medianMs / i.bareLatency.medianMs)}x bare`,
      target: "≤ 1.5x",
    });
  rows.push(...i.warm);
  const rest = i.http?.rows.find((r) => r.path.startsWith("REST"));
  if (rest)
    rows.push({
      figure: `REST executions/s at concurrency ${i.concurrency}`,
      value:
        `${rest.perSecond}/s` +
        (i.bareRate2 ? ` = ${round(rest.perSecond / i.bareRate2)}x bare (2 spawners)` : "") +
        (rest.failures ? `, ${rest.failures} failures` : ""),
      target: "≥ 0.6x",
    });
  if (i.http) {
    const p = i.http.pool;
    rows.push({
      figure: "pool hit rate under the REST load",
      value: p ? `${p.hitRate ?? "n/a"} (${p.hits} hits, ${p.misses} misses)` : "n/a",
      target: "",
    });
  }
  if (i.scale) {
    const s = i.scale;
    rows.push(
      {
        figure: `trivial run latency, 0 vs ${s.sleepers} sleepers live`,
        value: `${s.latencyAt0.medianMs} → ${s.latencyAtN.medianMs} ms = ${s.latencyRatio}x`,
        target: "≤ 1.5x",
      },
      {
        figure: `Warden RSS with ${s.sleepers} sleepers live`,
        value: `${s.rssMb[String(s.sleepers)]} MiB (${s.rssMb["0"]} MiB at 0)`,
        target: "bounded",
      },
      {
        figure: `errors, ${s.sleepers} sleepers (${s.peakLive} live at once)`,
        value: String(s.errors),
        target: "0",
      },
    );
  }
  return rows;
}

export function renderTable(rows: SummaryRow[]): string {
  const w0 = Math.max(6, ...rows.map((r) => r.figure.length));
  const w1 = Math.max(5, ...rows.map((r) => r.value.length));
  const line = (a: string, b: string, c: string): string =>
    `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`.trimEnd();
  return [line("figure", "value", "target"), line("-".repeat(w0), "-".repeat(w1), "------")]
    .concat(rows.map((r) => line(r.figure, r.value, r.target)))
    .join("\n");
}
