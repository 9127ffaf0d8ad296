/**
 * A request's test cases checked and resolved: count and bytes within the
 * `judging` bounds, each case's limits within the server's maxima, the
 * comparison consistent with its checker. Every refusal names the field,
 * e.g. `tests[3].stdin: ...`.
 */
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import { resolveLimits } from "../executions/limits.js";
import type { Comparison, TestCaseInput } from "../contract/judging.js";
import type { RequestLimits } from "../contract/limits.js";
import type { JudgeCase, JudgeSpec } from "./types.js";

/** The fields of an execution request that judging reads (CreateExecutionInput's). */
export interface JudgeInput {
  tests?: TestCaseInput[] | undefined;
  testsFrom?: string | undefined;
  compare?: Comparison | undefined;
  stopOnFirstFailure?: boolean | undefined;
  stdin?: string | undefined;
  args?: string[] | undefined;
  artifacts?: string[] | undefined;
  timeout?: number | undefined;
  limits?: RequestLimits | undefined;
}

const refuse = (message: string): never => {
  throw new WardenError("INVALID_REQUEST", message);
};

/** Limits resolved for `field`; a refusal's message is prefixed with it. */
function limitsFor(field: string, config: Config, request: Parameters<typeof resolveLimits>[1]) {
  try {
    return resolveLimits(config, request);
  } catch (error) {
    if (error instanceof WardenError)
      throw new WardenError(error.code, `${field}.${error.message}`, { details: error.details });
    throw error;
  }
}

/**
 * The judging part of a request, or undefined when it has none.
 * `checkerLanguage` gives a language's canonical name, or undefined when it
 * is not runnable here (absent: the engine finds out).
 */
export function resolveJudge(
  config: Config,
  input: JudgeInput,
  checkerLanguage?: (name: string) => string | undefined,
): JudgeSpec | undefined {
  const j = config.judging;
  const judged = input.tests !== undefined || input.testsFrom !== undefined;
  if (!judged) {
    if (input.compare) refuse("compare: only with tests or testsFrom");
    if (input.stopOnFirstFailure !== undefined)
      refuse("stopOnFirstFailure: only with tests or testsFrom");
    return undefined;
  }
  if (input.tests && input.testsFrom) refuse("tests, testsFrom: give one of them, not both");
  if (input.stdin !== undefined) refuse("stdin: with tests, each case gives its own stdin");
  if (input.artifacts) refuse("artifacts: a test-case run collects no artifacts");
  const compare = input.compare ?? { mode: "trailing_whitespace" as const };
  if (compare.mode === "checker" && !compare.checker)
    refuse("compare.checker: required when compare.mode is checker");
  if (compare.mode !== "checker" && compare.checker)
    refuse("compare.checker: only with compare.mode checker");
  let checker: JudgeSpec["checker"];
  if (compare.checker) {
    const c = compare.checker;
    const language = checkerLanguage ? checkerLanguage(c.language) : c.language;
    if (language === undefined)
      refuse(`compare.checker.language: "${c.language}" is not supported (GET /v1/runtimes)`);
    if (Buffer.byteLength(c.code) > config.maxCodeBytes)
      refuse(`compare.checker.code: must be at most ${config.maxCodeBytes} bytes (maxCodeBytes)`);
    const { timeout, ...limits } = c.limits ?? {};
    checker = {
      language: language!,
      code: c.code,
      limits: limitsFor("compare.checker", config, { timeout, limits }),
    };
  }
  const tests = input.tests ?? [];
  if (tests.length > j.maxTests)
    refuse(`tests: at most ${j.maxTests} cases (judging.maxTests), got ${tests.length}`);
  let total = 0;
  const names = new Set<string>();
  const cases = tests.map((t, i): JudgeCase => {
    const field = `tests[${i}]`;
    const name = t.name ?? String(i + 1);
    if (names.has(name)) refuse(`${field}.name: "${name}" is given twice`);
    names.add(name);
    const stdinBytes = Buffer.byteLength(t.stdin ?? "");
    if (stdinBytes > j.maxCaseInputBytes)
      refuse(
        `${field}.stdin: must be at most ${j.maxCaseInputBytes} bytes (judging.maxCaseInputBytes)`,
      );
    const expectedBytes = Buffer.byteLength(t.expectedOutput ?? "");
    if (expectedBytes > j.maxExpectedOutputBytes)
      refuse(
        `${field}.expectedOutput: must be at most ${j.maxExpectedOutputBytes} bytes (judging.maxExpectedOutputBytes)`,
      );
    total += stdinBytes + expectedBytes;
    if (total > j.maxTestsBytes)
      refuse(
        `tests: stdin and expectedOutput together at most ${j.maxTestsBytes} bytes (judging.maxTestsBytes)`,
      );
    let limits: JudgeCase["limits"];
    if (t.limits) {
      const { timeout, ...own } = t.limits;
      limits = limitsFor(`${field}`, config, {
        timeout: timeout ?? input.timeout,
        limits: { ...input.limits, ...own },
      });
    }
    return {
      name,
      stdin: t.stdin,
      args: t.args ?? input.args,
      expectedOutput: t.expectedOutput,
      limits,
      points: t.points ?? 1,
    };
  });
  return {
    cases,
    suiteId: input.testsFrom,
    compare: {
      mode: compare.mode,
      absoluteTolerance: compare.absoluteTolerance,
      relativeTolerance: compare.relativeTolerance,
    },
    checker,
    stopOnFirstFailure: input.stopOnFirstFailure ?? false,
  };
}
