/**
 * `warden bench`: isolation overhead and timeout accuracy, as ratios against
 * a baseline measured in the same run on the same machine (absolute numbers
 * mean little on shared hardware; ratios travel).
 */
import { performance } from "node:perf_hooks";
import type { SandboxHost } from "../sandbox/host.js";
import { findTool } from "../runtimes/registry.js";
import { benchHttp, type HttpBenchResult } from "./bench-http.js";
import { benchScale, type ScaleResult } from "./bench-scale.js";
import { measureWarm } from "./bench-session.js";
import { renderTable, summaryRows, type SummaryRow } from "./bench-summary.js";
import { warmLatencyRows } from "./bench-warm.js";
import { benchEnvironments, type EnvBenchRow } from "./bench-env.js";
import { benchCluster, DEFAULT_BENCH_DATABASE_URL } from "./bench-cluster.js";
import {
  bareRate,
  bareSpawn,
  BENCH_LIMITS as LIMITS,
  round,
  stats,
  timed,
  type Stats,
} from "./measure.js";
import { createContext, openHost, type GlobalOptions } from "./context.js";
import { benchJudge } from "./bench-judge.js";
import { benchTiers } from "./bench-tiers.js";

export interface BenchOptions extends GlobalOptions {
  runs?: string;
  json?: boolean;
  /** Measure executions/s through the REST API (on unless `--no-http`). */
  http?: boolean;
  requests?: string;
  concurrency?: string;
  /** Measure 1,000 concurrent sleeping sandboxes (slow: minutes). */
  scale?: boolean;
  /** Measure this many concurrent sleeping sandboxes (implies the scale section). */
  sleepers?: string;
  /** Only the cluster throughput: one API node with 1 and 2 workers vs a single node. */
  cluster?: boolean;
  /** PostgreSQL where `--cluster` makes its scratch database. */
  databaseUrl?: string;
  /** Only test cases/s: one judge run vs the same cases as separate executions. */
  judge?: boolean;
  /** Cases of `--judge`. @default 100 */
  cases?: string;
  /** Only cold and warm starts per isolation tier, e.g. `namespaces,gvisor`. */
  tiers?: string;
  /** Only cold and warm starts in this tier (`--tiers` with one entry). */
  isolation?: string;
}

async function sandboxed(host: SandboxHost, argv: string[], limits = LIMITS): Promise<number> {
  const box = await host.prepare({ diskMb: limits.diskMb });
  try {
    const start = performance.now();
    const result = await box.run({ argv, limits });
    const elapsed = performance.now() - start;
    if (result.status === "error")
      throw new Error(`sandboxed ${argv.join(" ")}: ${result.errorMessage}`);
    return elapsed;
  } finally {
    await box.destroy();
  }
}

export interface OverheadRow {
  command: string;
  bare: Stats;
  sandboxed: Stats;
  ratioMedian: number;
  ratioP95: number;
}

export async function measureOverhead(
  host: SandboxHost,
  argv: string[],
  runs: number,
): Promise<OverheadRow> {
  const bare: number[] = [];
  const boxed: number[] = [];
  for (let i = 0; i < 3; i++) {
    await bareSpawn(argv);
    await sandboxed(host, argv);
  }
  // Interleave so that drift on a shared machine hits both sides alike.
  for (let i = 0; i < runs; i++) {
    bare.push(await timed(() => bareSpawn(argv)));
    boxed.push(await timed(() => sandboxed(host, argv)));
  }
  const b = stats(bare);
  const s = stats(boxed);
  return {
    command: argv.map((a) => (a.includes(" ") ? JSON.stringify(a) : a)).join(" "),
    bare: b,
    sandboxed: s,
    ratioMedian: round(s.medianMs / b.medianMs),
    ratioP95: round(s.p95Ms / b.p95Ms),
  };
}

export interface TimeoutRow {
  case: string;
  requestedMs: number;
  graceMs: number;
  /** Observed end minus (deadline + grace where SIGTERM is trapped). */
  overshootMedianMs: number;
  overshootMaxMs: number;
}

async function measureTimeout(
  host: SandboxHost,
  sh: string,
  trapped: boolean,
  runs: number,
): Promise<TimeoutRow> {
  const requestedMs = 500;
  const graceMs = trapped ? 300 : 1000;
  const script = trapped ? "trap '' TERM; while :; do :; done" : "exec sleep 30";
  const overshoots: number[] = [];
  for (let i = 0; i < runs; i++) {
    const box = await host.prepare({ diskMb: 4 });
    try {
      const result = await box.run({
        argv: [sh, "-c", script],
        limits: { ...LIMITS, timeoutMs: requestedMs, killGraceMs: graceMs },
      });
      if (result.status !== "timeout") throw new Error(`timeout bench ended ${result.status}`);
      overshoots.push(result.metrics.wallTimeMs - requestedMs - (trapped ? graceMs : 0));
    } finally {
      await box.destroy();
    }
  }
  const sorted = overshoots.sort((a, b) => a - b);
  return {
    case: trapped ? "SIGTERM trapped (killed after grace)" : "plain sleep (SIGTERM)",
    requestedMs,
    graceMs: trapped ? graceMs : 0,
    overshootMedianMs: round(sorted[Math.floor(sorted.length / 2)]!),
    overshootMaxMs: round(sorted[sorted.length - 1]!),
  };
}

/** `warden bench --cluster`: its own section, apart from the single-node figures. */
async function clusterCommand(options: BenchOptions): Promise<number> {
  const requests = Math.max(20, Number(options.requests ?? 500));
  const concurrency = Math.max(1, Number(options.concurrency ?? 20));
  const log = (line: string): void => {
    if (!options.json) process.stdout.write(`${line}\n`);
  };
  log(
    `warden bench --cluster: ${requests} python executions at concurrency ${concurrency}, each setup on this machine\n`,
  );
  const result = await benchCluster({
    requests,
    concurrency,
    databaseUrl: options.databaseUrl ?? DEFAULT_BENCH_DATABASE_URL,
    configFile: options.config,
    log,
  });
  const r = result.ratios;
  log(
    `\n  per worker with 2 workers: ${Object.entries(result.perWorker)
      .map(([name, rate]) => `${name} ${rate} exec/s`)
      .join(", ")}`,
  );
  log(`  per-worker ceiling (1 worker through the API node): ${result.perWorkerCeiling} exec/s`);
  log(
    `  ratios: 1 worker / single ${r.oneWorkerVsSingle}x, 2 workers / single ${r.twoWorkersVsSingle}x, 2 workers / 1 worker ${r.twoVsOneWorker}x`,
  );
  for (const e of result.errorSamples) log(`  error: ${e}`);
  if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return result.rows.some((row) => row.failures > 0) ? 1 : 0;
}

export async function benchCommand(options: BenchOptions): Promise<number> {
  if (options.cluster) return clusterCommand(options);
  if (options.judge) return benchJudge(options);
  if (options.tiers !== undefined || options.isolation !== undefined) return benchTiers(options);
  const runs = Math.max(5, Number(options.runs ?? 50));
  const ctx = createContext(options);
  const host = await openHost(ctx);
  const search = ctx.config.sandbox.searchPath;
  const python = findTool(["python3"], search);
  const node = findTool(["node", "nodejs"], search);
  const sh = findTool(["sh"], search) ?? "/bin/sh";
  const commands = [
    ...(python ? [[python, "-c", "pass"]] : []),
    ...(node ? [[node, "-e", "0"]] : []),
    [findTool(["true"], search) ?? "/bin/true"],
  ];
  const log = (line: string): void => {
    if (!options.json) process.stdout.write(`${line}\n`);
  };
  log(
    `warden bench: ${runs} runs each, bare spawn vs full sandbox (cgroup, tmpfs, bwrap, seccomp)\n`,
  );
  log(
    `${"command".padEnd(34)} ${"bare med/p95 ms".padStart(18)} ${"sandbox med/p95 ms".padStart(20)} ${"ratio med/p95".padStart(15)}`,
  );
  const overhead: OverheadRow[] = [];
  for (const argv of commands) {
    const row = await measureOverhead(host, argv, runs);
    overhead.push(row);
    log(
      `${row.command.padEnd(34)} ${`${row.bare.medianMs} / ${row.bare.p95Ms}`.padStart(18)} ${`${row.sandboxed.medianMs} / ${row.sandboxed.p95Ms}`.padStart(20)} ${`${row.ratioMedian}x / ${row.ratioP95}x`.padStart(15)}`,
    );
  }
  log("\ntimeout accuracy (deadline 500 ms; overshoot = observed end - deadline - grace)");
  const timeouts: TimeoutRow[] = [];
  for (const trapped of [false, true]) {
    const row = await measureTimeout(host, sh, trapped, 5);
    timeouts.push(row);
    log(
      `  ${row.case.padEnd(38)} median +${row.overshootMedianMs} ms, max +${row.overshootMaxMs} ms`,
    );
  }
  log(
    "\nsessions: a call into a live one, a new one, a pause cycle, vs the same work spawned bare",
  );
  const warm = await measureWarm(ctx.config, host, ctx.logger, { python, sh }, runs);
  for (const row of warm)
    log(
      `  ${row.case.padEnd(38)} bare ${row.bareMedianMs} ms, session ${row.sessionMedianMs} ms: ${row.ratio}x`,
    );
  const pythonRow = python ? overhead[0] : undefined;
  let bareRate2: number | null = null;
  let warmRows: SummaryRow[] = [];
  if (python && pythonRow) {
    bareRate2 = await bareRate([python, "-c", "pass"], 2, Math.max(40, runs * 2));
    log(`\nbare python3 -c pass from 2 parallel spawners: ${bareRate2}/s`);
  }
  await host.close();
  let environments: EnvBenchRow[] = [];
  if (python) {
    log("\nenvironments: start of python `pass` with an environment vs the default one");
    environments = await benchEnvironments({
      config: ctx.config,
      registry: ctx.registry,
      logger: ctx.logger,
      limits: LIMITS,
      runs,
    });
    for (const row of environments)
      log(
        `  ${row.case.padEnd(22)} ${`${row.files} files, ${round(row.sizeBytes / 1024 / 1024)} MiB`.padEnd(22)} cold ${row.cold.medianMs} ms (${row.coldRatio}x)   warm ${row.warm.medianMs} ms (${row.warmRatio}x)`,
      );
  }
  const concurrency = Math.max(1, Number(options.concurrency ?? 20));
  let http: HttpBenchResult | null = null;
  if (options.http !== false) {
    const requests = Math.max(20, Number(options.requests ?? 500));
    log(`\nthroughput: ${requests} trivial python executions at concurrency ${concurrency}`);
    http = await benchHttp({
      requests,
      concurrency,
      configFile: options.config,
      warmRuns: python ? runs : 0,
    });
    warmRows = warmLatencyRows(http.warm, pythonRow?.bare ?? null);
    const throughput = http.rows;
    for (const row of throughput)
      log(
        `  ${row.path.padEnd(26)} ${`${row.perSecond} exec/s`.padStart(14)}   p50 ${row.p50Ms} ms   p99 ${row.p99Ms} ms   failures ${row.failures}`,
      );
    const [direct, rest] = throughput;
    if (direct && rest)
      log(`  REST / direct throughput: ${round(rest.perSecond / direct.perSecond)}x`);
  }
  let scale: ScaleResult | null = null;
  const sleepers =
    options.sleepers !== undefined ? Number(options.sleepers) : options.scale ? 1000 : 0;
  if (sleepers > 0) {
    log(`\nscale: ${sleepers} concurrent sleeping executions through warden serve`);
    scale = await benchScale({ sleepers, configFile: options.config, log });
    log(`  Warden RSS (MiB) by live sleepers: ${JSON.stringify(scale.rssMb)}`);
    log(`  Warden open fds: ${scale.fds.at0} at 0, ${scale.fds.atN} at ${sleepers}`);
    for (const e of scale.errorSamples) log(`  error: ${e}`);
  }
  const peakRssMb = round(process.resourceUsage().maxRSS / 1024);
  log(`\nbench process peak RSS: ${peakRssMb} MiB`);
  const summary = summaryRows({
    bareLatency: pythonRow?.bare ?? null,
    bareRate2,
    coldLatency: pythonRow?.sandboxed ?? null,
    warm: warmRows,
    http,
    concurrency,
    scale,
  });
  log(`\nsummary (same-run ratios against a bare spawn)\n${renderTable(summary)}`);
  if (options.json)
    process.stdout.write(
      `${JSON.stringify({ runs, overhead, timeouts, warm, environments, bareRate2, throughput: http?.rows, pool: http?.pool ?? null, scale, summary, peakRssMb }, null, 2)}\n`,
    );
  return scale && scale.errors > 0 ? 1 : 0;
}
