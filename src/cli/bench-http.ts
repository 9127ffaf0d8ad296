/**
 * `warden bench --http`: executions per second and latency through the REST
 * API (autocannon on loopback) against the same executions run directly
 * through the engine, in the same run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../audit/logger.js";
import { WardenError } from "../errors.js";
import type Autocannon from "autocannon";
import { loadConfig } from "../config/load.js";
import { openWarden } from "../warden.js";
import { buildServer } from "../http/server.js";
import { resolveLimits } from "../executions/limits.js";
import { executeCode } from "../runtimes/execute.js";
import { SCOPES } from "../store/keys.js";
import { measureWarmLatency, type WarmLatency } from "./bench-warm.js";
import { closedLoop, quantile, round } from "./measure.js";

export interface HttpBenchOptions {
  requests: number;
  concurrency: number;
  configFile?: string | undefined;
  /** Sequential warm runs to time first (0: none). */
  warmRuns?: number | undefined;
}

export interface ThroughputRow {
  path: string;
  executions: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
}

export interface PoolHits {
  hits: number;
  misses: number;
  /** hits / (hits + misses) over the REST load; null when nothing was counted. */
  hitRate: number | null;
}

export interface HttpBenchResult {
  rows: ThroughputRow[];
  /** The warm pool's hits under the REST load; null when /metrics has no pool counters. */
  pool: PoolHits | null;
  /** One run at a time, each taking a started box. */
  warm: WarmLatency | null;
}

const CODE = "print(1)";

/** Sum of every series of a Prometheus counter in a scrape; null when it is absent. */
export function counterTotal(scrape: string, name: string): number | null {
  let total: number | null = null;
  for (const line of scrape.split("\n")) {
    const space = line.lastIndexOf(" ");
    const series = line.slice(0, space);
    if (space < 0 || (series !== name && !series.startsWith(`${name}{`))) continue;
    total = (total ?? 0) + Number(line.slice(space + 1));
  }
  return total;
}

async function poolCounters(url: string): Promise<{ hits: number; misses: number } | null> {
  const scrape = await (await fetch(`${url}/metrics`)).text();
  const hits = counterTotal(scrape, "warden_pool_hits_total");
  const misses = counterTotal(scrape, "warden_pool_misses_total");
  return hits === null || misses === null ? null : { hits, misses };
}

/**
 * autocannon is a development dependency: a production install has no load
 * generator, and says so instead of failing to start `warden bench` at all.
 */
async function loadAutocannon(): Promise<typeof Autocannon> {
  try {
    return (await import("autocannon")).default;
  } catch {
    throw new WardenError(
      "INVALID_REQUEST",
      "warden bench's REST section needs autocannon (npm install autocannon), or run it with --no-http",
    );
  }
}

export async function benchHttp(o: HttpBenchOptions): Promise<HttpBenchResult> {
  const dataDir = mkdtempSync(join(tmpdir(), "warden-bench-"));
  const base = loadConfig({ file: o.configFile });
  // Wide limits: this measures the machine, not the admission policy.
  const config = loadConfig({
    file: o.configFile,
    overrides: {
      dataDir,
      maxConcurrentSandboxes: Math.max(base.maxConcurrentSandboxes, o.concurrency),
      maxSandboxesPerUser: Math.max(base.maxSandboxesPerUser, o.concurrency),
      maxQueuedPerUser: Math.max(base.maxQueuedPerUser, o.concurrency * 2),
      "server.port": 0,
      "server.rateLimits": {
        perKey: { burst: 100_000, perMinute: 1_000_000, perHour: 10_000_000 },
        perIp: { burst: 100_000, perMinute: 1_000_000, perHour: 10_000_000 },
      },
    },
  });
  const warden = await openWarden({ config, logger: silentLogger });
  const keys = warden.store.keys;
  const { token } = await keys.create({ name: "bench", scopes: [...SCOPES], userId: "bench" });
  const app = await buildServer({ ...warden, config, logger: silentLogger, service: warden, keys });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  const rows: ThroughputRow[] = [];
  let pool: PoolHits | null = null;
  let warm: WarmLatency | null = null;
  try {
    const limits = resolveLimits(config, { timeout: 30 });
    if (o.warmRuns) warm = await measureWarmLatency(warden, url, token, limits, o.warmRuns);
    // Direct: the engine alone, same concurrency, same code.
    const direct = await closedLoop(o.requests, o.concurrency, async () => {
      const r = await executeCode(warden.host, warden.registry, {
        language: "python",
        files: [{ path: "main.py", content: CODE }],
        limits,
      });
      return r.status === "completed";
    });
    rows.push({
      path: "engine (direct)",
      executions: direct.latencies.length,
      perSecond: Math.round((direct.latencies.length / direct.seconds) * 10) / 10,
      p50Ms: Math.round(quantile(direct.latencies, 0.5) * 10) / 10,
      p99Ms: Math.round(quantile(direct.latencies, 0.99) * 10) / 10,
      failures: direct.failures,
    });

    const before = await poolCounters(url);
    const result = await (
      await loadAutocannon()
    )({
      url: `${url}/v1/executions`,
      method: "POST",
      connections: o.concurrency,
      amount: o.requests,
      timeout: 60,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ language: "python", code: CODE, timeout: 30 }),
    });
    rows.push({
      path: "REST POST /v1/executions",
      executions: result["2xx"],
      perSecond: Math.round((result["2xx"] / result.duration) * 10) / 10,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      failures: result.non2xx + result.errors + result.timeouts,
    });
    const after = await poolCounters(url);
    if (before && after) {
      const hits = after.hits - before.hits;
      const misses = after.misses - before.misses;
      pool = { hits, misses, hitRate: hits + misses > 0 ? round(hits / (hits + misses)) : null };
    }
  } finally {
    await app.close();
    await warden.shutdown(5000);
    rmSync(dataDir, { recursive: true, force: true });
  }
  return { rows, pool, warm };
}
