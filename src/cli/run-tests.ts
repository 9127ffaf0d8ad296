/**
 * `warden run FILE --tests DIR`: the program judged on every NAME.in of DIR
 * (with NAME.out as the expected output, when there is one), compiled once,
 * each case in a fresh sandbox. A compact table on a terminal, the result
 * with `--json`; exit 0 only when every case is accepted.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/schema.js";
import { COMPARE_MODES as MODES, type TestCaseInput } from "../contract/judging.js";
import type { ExecutionResult } from "../contract/result.js";
import { WardenError } from "../errors.js";
import { resolveJudge } from "../judging/request.js";
import type { JudgeSpec } from "../judging/types.js";
import type { RequestLimits } from "../executions/limits.js";

export interface TestsOptions {
  tests?: string;
  compare?: string;
  tolerance?: string;
  checker?: string;
  stopOnFirstFailure?: boolean;
}

/** The cases of a directory: NAME.in files sorted by name (2 before 10), NAME.out beside them. */
export async function readTestsDir(dir: string, config: Config): Promise<TestCaseInput[]> {
  const entries = await readdir(dir).catch(() => {
    throw new WardenError("INVALID_REQUEST", `--tests ${dir}: not a readable directory`);
  });
  const names = entries
    .filter((e) => e.endsWith(".in"))
    .map((e) => e.slice(0, -3))
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  if (names.length === 0)
    throw new WardenError("INVALID_REQUEST", `--tests ${dir}: no NAME.in files`);
  if (names.length > config.judging.maxTests)
    throw new WardenError(
      "INVALID_REQUEST",
      `--tests ${dir}: ${names.length} cases, at most ${config.judging.maxTests} (judging.maxTests)`,
    );
  const out = new Set(entries.filter((e) => e.endsWith(".out")));
  return Promise.all(
    names.map(async (name) => {
      const input = join(dir, `${name}.in`);
      if (!(await stat(input)).isFile())
        throw new WardenError("INVALID_REQUEST", `--tests ${input}: not a file`);
      return {
        name,
        stdin: await readFile(input, "utf8"),
        ...(out.has(`${name}.out`)
          ? { expectedOutput: await readFile(join(dir, `${name}.out`), "utf8") }
          : {}),
      };
    }),
  );
}

/** The judging spec of the CLI's flags. */
export async function cliJudge(
  options: TestsOptions,
  config: Config,
  run: { timeout?: number | undefined; limits: RequestLimits; args?: string[] | undefined },
  checkerLanguage: (file: string) => string | undefined,
): Promise<JudgeSpec> {
  const tests = await readTestsDir(options.tests!, config);
  const mode = options.compare ?? (options.checker ? "checker" : undefined);
  if (mode !== undefined && !(MODES as readonly string[]).includes(mode))
    throw new WardenError("INVALID_REQUEST", `--compare: one of ${MODES.join(", ")}`);
  let checker: { language: string; code: string } | undefined;
  if (options.checker) {
    const language = checkerLanguage(options.checker);
    if (!language)
      throw new WardenError("INVALID_REQUEST", `--checker ${options.checker}: unknown language`);
    checker = { language, code: await readFile(options.checker, "utf8") };
  }
  const tolerance = options.tolerance === undefined ? undefined : Number(options.tolerance);
  if (tolerance !== undefined && !(tolerance >= 0))
    throw new WardenError("INVALID_REQUEST", "--tolerance: a number, at least 0");
  // Config (not a client's) bounds the stdin of each case: the operator's own files.
  const bounds = { ...config.judging, maxCaseInputBytes: Infinity, maxTestsBytes: Infinity };
  const spec = resolveJudge(
    { ...config, judging: bounds },
    {
      tests,
      compare: mode
        ? {
            mode: mode as (typeof MODES)[number],
            absoluteTolerance: tolerance,
            relativeTolerance: tolerance,
            checker,
          }
        : undefined,
      stopOnFirstFailure: options.stopOnFirstFailure,
      args: run.args?.length ? run.args : undefined,
      timeout: run.timeout,
      limits: run.limits,
    },
  );
  return spec!;
}

function size(bytes: number): string {
  return bytes >= 1024 * 1024
    ? `${(bytes / 1024 / 1024).toFixed(1)} MiB`
    : `${Math.round(bytes / 1024)} KiB`;
}

/** The table a terminal gets: one line per case, then the totals. */
export function testsTable(result: ExecutionResult): string {
  const t = result.tests;
  if (!t) return "";
  const width = Math.max(4, ...t.cases.map((c) => c.name.length));
  const lines = [
    `${"case".padEnd(width)}  ${"verdict".padEnd(14)} ${"time".padStart(8)} ${"memory".padStart(10)}`,
  ];
  for (const c of t.cases) {
    const ran = c.status !== null;
    lines.push(
      `${c.name.padEnd(width)}  ${c.verdict.padEnd(14)} ${(ran ? `${c.timeMs} ms` : "-").padStart(8)} ${(ran ? size(c.peakMemoryBytes) : "-").padStart(10)}${c.diff ? `  ${c.diff}` : c.message ? `  ${c.message}` : ""}`,
    );
  }
  lines.push(
    `${t.verdict}: ${t.passed}/${t.total} passed, ${t.failed} failed, ${t.skipped} skipped; score ${t.score}/${t.maxScore}`,
  );
  return `${lines.join("\n")}\n`;
}
