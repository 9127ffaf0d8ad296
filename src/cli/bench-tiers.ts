/**
 * `warden bench --tiers namespaces,gvisor` (or `--isolation gvisor`): for each
 * isolation tier, the cold start (a fresh box) and the warm start (a box whose
 * sandbox was started ahead, as the pool keeps them) of `python3 -c pass` and
 * `/bin/true`, against a bare spawn interleaved in the same run, and how a
 * cold start slows when several start at once. A tier the host does not offer
 * is reported with the reason and skipped.
 */
import { IsolationSchema, type Isolation } from "../contract/isolation.js";
import { findTool } from "../runtimes/registry.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { RunResult } from "../sandbox/types.js";
import { describeProbe } from "../sandbox/gvisor/probe.js";
import { quickGvisorStatus } from "../sandbox/gvisor/status.js";
import { createContext, openHost, type GlobalOptions } from "./context.js";
import { bareSpawn, BENCH_LIMITS as LIMITS, round, stats, timed, type Stats } from "./measure.js";

export interface TierBenchOptions extends GlobalOptions {
  runs?: string;
  json?: boolean;
  /** Comma-separated tiers, e.g. `namespaces,gvisor`. */
  tiers?: string;
  /** One tier (`--isolation gvisor`), when `tiers` is not given. */
  isolation?: string;
}

export interface TierRow {
  tier: Isolation;
  command: string;
  bare: Stats;
  cold: Stats;
  warm: Stats;
  coldRatio: number;
  warmRatio: number;
}

export interface ParallelRow {
  tier: Isolation;
  /** Cold starts of /bin/true begun together. */
  parallel: number;
  /** Median time of one start among them, and against a lone cold start. */
  perStart: Stats;
  vsAlone: number;
}

const PARALLEL = 4;

/** Which tiers were asked for, each checked against the contract's names. */
export function parseTiers(options: Pick<TierBenchOptions, "tiers" | "isolation">): Isolation[] {
  const list = options.tiers ?? options.isolation ?? "namespaces";
  return [...new Set(list.split(",").map((t) => IsolationSchema.parse(t.trim())))];
}

/**
 * One run in a box of `tier`, timed from the request to the result: cold on a
 * fresh box, warm on one whose sandbox was prestarted (off the clock).
 */
async function start(
  host: SandboxHost,
  tier: Isolation,
  argv: string[],
  warm: boolean,
): Promise<number> {
  const box = await host.prepare({ diskMb: LIMITS.diskMb, isolation: tier });
  try {
    if (warm) await box.prestart({ limits: LIMITS });
    let ran: RunResult | undefined;
    const ms = await timed(async () => (ran = await box.run({ argv, limits: LIMITS })));
    if (ran?.status === "error") throw new Error(`${argv.join(" ")}: ${ran.errorMessage}`);
    // Never print a namespaces figure under the gvisor label.
    if ((ran?.isolation ?? "namespaces") !== tier)
      throw new Error(`this build's SandboxHost gave a ${ran?.isolation ?? "namespaces"} box`);
    return ms;
  } finally {
    await box.destroy();
  }
}

async function measureTier(
  host: SandboxHost,
  tier: Isolation,
  argv: string[],
  runs: number,
): Promise<TierRow> {
  const bare: number[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < 2; i++) {
    await bareSpawn(argv);
    await start(host, tier, argv, false);
    await start(host, tier, argv, true);
  }
  // Interleaved, so drift on a shared machine hits the three alike.
  for (let i = 0; i < runs; i++) {
    bare.push(await timed(() => bareSpawn(argv)));
    cold.push(await start(host, tier, argv, false));
    warm.push(await start(host, tier, argv, true));
  }
  const b = stats(bare);
  const c = stats(cold);
  const w = stats(warm);
  return {
    tier,
    command: argv.join(" "),
    bare: b,
    cold: c,
    warm: w,
    coldRatio: round(c.medianMs / b.medianMs),
    warmRatio: round(w.medianMs / b.medianMs),
  };
}

async function measureParallel(
  host: SandboxHost,
  tier: Isolation,
  argv: string[],
  rounds: number,
  alone: Stats,
): Promise<ParallelRow> {
  const each: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const times = await Promise.all(
      Array.from({ length: PARALLEL }, () => start(host, tier, argv, false)),
    );
    each.push(...times);
  }
  const perStart = stats(each);
  return { tier, parallel: PARALLEL, perStart, vsAlone: round(perStart.medianMs / alone.medianMs) };
}

/** Why `tier` cannot be measured on this host, or null. */
async function unavailable(tier: Isolation, options: TierBenchOptions): Promise<string | null> {
  if (tier !== "gvisor") return null;
  const status = await quickGvisorStatus(createContext(options).config.sandbox.gvisor);
  return status.available ? null : describeProbe(status);
}

export async function benchTiers(options: TierBenchOptions): Promise<number> {
  const tiers = parseTiers(options);
  const runs = Math.max(5, Number(options.runs ?? 20));
  const ctx = createContext(options);
  const search = ctx.config.sandbox.searchPath;
  const python = findTool(["python3"], search);
  const commands = [
    ...(python ? [[python, "-c", "pass"]] : []),
    [findTool(["true"], search) ?? "/bin/true"],
  ];
  const log = (line: string): void => {
    if (!options.json) process.stdout.write(`${line}\n`);
  };
  log(`warden bench --tiers ${tiers.join(",")}: ${runs} runs each, bare spawn vs cold and warm\n`);
  log(
    `${"tier".padEnd(11)} ${"command".padEnd(26)} ${"bare med/p95".padStart(15)} ${"cold med/p95".padStart(15)} ${"warm med/p95".padStart(15)} ${"cold/bare".padStart(10)} ${"warm/bare".padStart(10)}`,
  );
  const host = await openHost(ctx);
  const rows: TierRow[] = [];
  const parallel: ParallelRow[] = [];
  const skipped: Record<string, string> = {};
  try {
    for (const tier of tiers) {
      const why = await unavailable(tier, options);
      if (why) {
        skipped[tier] = why;
        log(`${tier.padEnd(11)} ${why}`);
        continue;
      }
      try {
        for (const argv of commands) {
          const row = await measureTier(host, tier, argv, runs);
          rows.push(row);
          log(
            `${tier.padEnd(11)} ${row.command.slice(-26).padEnd(26)} ${`${row.bare.medianMs}/${row.bare.p95Ms}`.padStart(15)} ${`${row.cold.medianMs}/${row.cold.p95Ms}`.padStart(15)} ${`${row.warm.medianMs}/${row.warm.p95Ms}`.padStart(15)} ${`${row.coldRatio}x`.padStart(10)} ${`${row.warmRatio}x`.padStart(10)}`,
          );
        }
        const lone = rows.at(-1)!;
        const p = await measureParallel(
          host,
          tier,
          commands.at(-1)!,
          Math.ceil(runs / 4),
          lone.cold,
        );
        parallel.push(p);
        log(
          `${tier.padEnd(11)} ${`${p.parallel} cold /bin/true at once`.padEnd(26)} one start ${p.perStart.medianMs}/${p.perStart.p95Ms} ms = ${p.vsAlone}x a lone one`,
        );
      } catch (error) {
        skipped[tier] = (error as Error).message;
        log(`${tier.padEnd(11)} failed: ${(error as Error).message}`);
      }
    }
  } finally {
    await host.close();
  }
  if (options.json)
    process.stdout.write(`${JSON.stringify({ runs, tiers: rows, parallel, skipped }, null, 2)}\n`);
  return Object.keys(skipped).length > 0 ? 1 : 0;
}
