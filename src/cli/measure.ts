/** What every `warden bench` figure is made of: a timer, a bare spawn to compare with, and stats. */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { BASE_ENV } from "../sandbox/box.js";
import type { SandboxLimits } from "../sandbox/types.js";

export interface Stats {
  medianMs: number;
  p95Ms: number;
}

export const round = (n: number): number => Math.round(n * 100) / 100;

export function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return { medianMs: round(quantile(sorted, 0.5)), p95Ms: round(quantile(sorted, 0.95)) };
}

/** The q-quantile of ascending samples (0 when there are none). */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/**
 * `total` calls of `one` from `concurrency` loops at once (a closed loop):
 * the latency of each call that succeeded (ascending), how many failed, and
 * the seconds the whole took.
 */
export async function closedLoop(
  total: number,
  concurrency: number,
  one: () => Promise<boolean>,
): Promise<{ latencies: number[]; failures: number; seconds: number }> {
  const latencies: number[] = [];
  let failures = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        const t = performance.now();
        if (await one()) latencies.push(performance.now() - t);
        else failures++;
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { latencies, failures, seconds: (performance.now() - started) / 1000 };
}

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** The baseline: the same command spawned on the host, in the environment a sandbox gets. */
export function bareSpawn(argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["pipe", "pipe", "pipe"],
      env: BASE_ENV,
      cwd: "/tmp",
    });
    child.stdin.end();
    child.stdout.resume();
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", () => resolve());
  });
}

/**
 * Bare spawns per second from `spawners` loops running side by side, each
 * spawning the next as soon as its last one ended: the ceiling a sandboxed
 * service is compared with (two spawners keep a 2-core machine busy).
 */
export async function bareRate(argv: string[], spawners: number, total: number): Promise<number> {
  let left = total;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: spawners }, async () => {
      while (left > 0) {
        left--;
        await bareSpawn(argv);
      }
    }),
  );
  return round(total / ((performance.now() - start) / 1000));
}

/** The limits of every sandboxed run a bench times (`warden bench` and its tier section). */
export const BENCH_LIMITS: SandboxLimits = {
  timeoutMs: 30_000,
  killGraceMs: 1000,
  memoryMb: 256,
  cpuPercent: 100,
  diskMb: 16,
  pids: 64,
  outputBytes: 1 << 20,
  openFiles: 256,
};
