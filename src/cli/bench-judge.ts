/**
 * `warden bench --judge`: test cases per second of one judge run (compiled
 * once, each case in a fresh sandbox) against the same cases run as separate
 * executions (each compiles again), in the same run on the same machine,
 * both through the library API and its scheduler, one at a time.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { openWarden } from "../warden.js";
import { round } from "./measure.js";
import type { BenchOptions } from "./bench.js";

const SOLUTION = `#include <stdio.h>
int main(void) { long a, b; if (scanf("%ld %ld", &a, &b) != 2) return 1; printf("%ld\\n", a + b); return 0; }
`;

export interface JudgeBench {
  cases: number;
  judgeRun: { seconds: number; casesPerSecond: number; accepted: number };
  separate: { seconds: number; casesPerSecond: number; accepted: number };
  ratio: number;
}

export async function benchJudge(options: BenchOptions): Promise<number> {
  const count = Math.max(2, Number(options.cases ?? 100));
  const log = (line: string): void => {
    if (!options.json) process.stdout.write(`${line}\n`);
  };
  const dataDir = mkdtempSync(join(tmpdir(), "warden-bench-judge-"));
  const warden = await openWarden({
    env: {
      WARDEN_DATA_DIR: dataDir,
      WARDEN_LOG_LEVEL: "warn",
      ...(options.config ? { WARDEN_CONFIG: options.config } : {}),
    },
  });
  try {
    const cases = Array.from({ length: count }, (_, i) => ({
      name: `t${i + 1}`,
      stdin: `${i} ${i * 7}\n`,
      expectedOutput: `${i * 8}\n`,
    }));
    log(
      `warden bench --judge: a C solution on ${count} cases, one judge run vs ${count} executions\n`,
    );
    let start = performance.now();
    const judged = await warden.execute(
      { language: "c", code: SOLUTION, timeout: 10, tests: cases },
      "bench-judge",
    );
    const judgeSeconds = (performance.now() - start) / 1000;
    start = performance.now();
    let accepted = 0;
    for (const c of cases) {
      const r = await warden.execute(
        { language: "c", code: SOLUTION, timeout: 10, stdin: c.stdin },
        "bench-judge",
      );
      if (r.status === "completed" && r.stdout === c.expectedOutput) accepted++;
    }
    const separateSeconds = (performance.now() - start) / 1000;
    const result: JudgeBench = {
      cases: count,
      judgeRun: {
        seconds: round(judgeSeconds),
        casesPerSecond: round(count / judgeSeconds),
        accepted: judged.tests?.passed ?? 0,
      },
      separate: {
        seconds: round(separateSeconds),
        casesPerSecond: round(count / separateSeconds),
        accepted,
      },
      ratio: round(separateSeconds / judgeSeconds),
    };
    log(
      `  one judge run:       ${result.judgeRun.casesPerSecond} cases/s (${result.judgeRun.seconds} s, ${result.judgeRun.accepted} accepted)`,
    );
    log(
      `  separate executions: ${result.separate.casesPerSecond} cases/s (${result.separate.seconds} s, ${accepted} accepted)`,
    );
    log(`  ratio: the judge run is ${result.ratio}x the separate executions' rate`);
    if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return result.judgeRun.accepted === count && accepted === count ? 0 : 1;
  } finally {
    await warden.shutdown(5000);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
