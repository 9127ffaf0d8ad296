/**
 * `warden bench`, warm pool rows: a trivial Python run that takes a box the
 * pool started ahead, through the engine and through REST, one at a time, as
 * ratios against the bare `python3 -c pass` measured in the same run
 * (targets: engine < 0.5x, REST < 1.0x). Between runs the bench waits, off
 * the clock, until the pool has a box again: this measures the warm path, and
 * the throughput rows measure what happens when requests outrun the refills.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { EmbeddedWarden } from "../warden.js";
import { executeCode } from "../runtimes/execute.js";
import type { SandboxLimits } from "../sandbox/types.js";
import type { SummaryRow } from "./bench-summary.js";
import { round, stats, timed, type Stats } from "./measure.js";

export interface WarmLatency {
  engine: Stats;
  rest: Stats;
  /** Runs that did not take a started box (the pool was empty or refused them). */
  coldRuns: number;
}

/** Waits, off the clock, until the pool has a python box and no start in flight. */
async function poolReady(warden: EmbeddedWarden): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const stats = warden.host.pool.stats();
    const python = stats.some((s) => s.key.startsWith("python|") && s.ready > 0);
    if (python && stats.every((s) => s.starting === 0)) return;
    await sleep(5);
  }
}

export async function measureWarmLatency(
  warden: EmbeddedWarden,
  url: string,
  token: string,
  limits: SandboxLimits,
  runs: number,
): Promise<WarmLatency> {
  let coldRuns = 0;
  const engine: number[] = [];
  const rest: number[] = [];
  for (let i = 0; i < runs; i++) {
    await poolReady(warden);
    engine.push(
      await timed(async () => {
        const r = await executeCode(warden.host, warden.registry, {
          language: "python",
          files: [{ path: "main.py", content: "pass" }],
          limits,
        });
        if (!r.metrics.warmStart) coldRuns++;
      }),
    );
    await poolReady(warden);
    rest.push(
      await timed(async () => {
        const response = await fetch(`${url}/v1/executions`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ language: "python", code: "pass", timeout: 30 }),
        });
        const body = (await response.json()) as { metrics?: { warmStart?: boolean } };
        if (!body.metrics?.warmStart) coldRuns++;
      }),
    );
  }
  return { engine: stats(engine), rest: stats(rest), coldRuns };
}

export function warmLatencyRows(warm: WarmLatency | null, bare: Stats | null): SummaryRow[] {
  if (!warm || !bare) return [];
  const ratio = (s: Stats): string =>
    `${s.medianMs} ms (p95 ${s.p95Ms}) = ${round(s.medianMs / bare.medianMs)}x bare`;
  return [
    { figure: "warm engine run (python, pass)", value: ratio(warm.engine), target: "< 0.5x" },
    { figure: "warm REST run, result returned", value: ratio(warm.rest), target: "< 1.0x" },
    { figure: "warm runs that found no started box", value: String(warm.coldRuns), target: "" },
  ];
}
