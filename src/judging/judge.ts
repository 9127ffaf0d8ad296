/**
 * Test-case runs ("judging"), like executeCode for one run: the program is
 * compiled ONCE, then each case runs in a FRESH sandbox started from the
 * compiled files (no case sees another's files), with its own stdin, args
 * and limits; its output is compared (or given to the checker, in a sandbox
 * of its own) and its verdict reported as soon as it is known.
 */
import { blankResult, type ExecutionResult } from "../contract/result.js";
import type { TestCaseResult, TestsSummary, Verdict } from "../contract/judging.js";
import { executeCode, type ExecuteRequest } from "../runtimes/execute.js";
import { addUsage, emptyUsage, type ExecutionUsage } from "../contract/usage.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import type { SandboxHost } from "../sandbox/host.js";
import { executionId } from "../util/ids.js";
import { runChecker } from "./checker.js";
import { compareOutput } from "./compare.js";
import { prepareProgram, type PreparedProgram, type ProgramRequest } from "./program.js";
import { runVerdict, type JudgeCase, type JudgeSpec } from "./types.js";

/** A program's request (what prepareProgram takes) plus the run's id and network. */
export interface JudgeRequest extends ProgramRequest, Pick<ExecuteRequest, "id" | "network"> {
  judge: JudgeSpec;
  /** Most bytes a compile step may leave (judging.maxCompiledMb). */
  maxCompiledBytes: number;
  /** Bytes of each case's stdout and stderr kept in its result (judging.caseOutputBytes). */
  caseOutputBytes: number;
  /** Cases not started this long after the run began are skipped (judging.maxRunSeconds). */
  maxRunMs?: number | undefined;
  /**
   * Asked before each case after the first with what the run has used so far:
   * a reason stops it (a usage quota the run would pass), and the remaining
   * cases are skipped with that reason.
   */
  stopIf?: ((used: ExecutionUsage) => Promise<string | null>) | undefined;
  /** Each case's result, as soon as it is known. */
  onCase?: ((result: TestCaseResult) => void) | undefined;
  /** The compile step ran (once, whatever the number of cases). */
  onCompile?: ((info: { cases: number; timeMs: number }) => void) | undefined;
}

type Ready = Extract<PreparedProgram, { ok: true }>;

/** The first `max` bytes of `text` (a cut character becomes U+FFFD), and whether it was cut. */
function head(text: string, max: number): { text: string; cut: boolean } {
  if (Buffer.byteLength(text) <= max) return { text, cut: false };
  return { text: Buffer.from(text).subarray(0, max).toString("utf8"), cut: true };
}

function unrun(index: number, c: JudgeCase, verdict: Verdict, message: string | null) {
  return {
    index,
    name: c.name,
    verdict,
    status: null,
    exitCode: null,
    signal: null,
    timeMs: 0,
    cpuTimeMs: 0,
    peakMemoryBytes: 0,
    stdout: "",
    stderr: "",
    truncated: { stdout: false, stderr: false },
    diff: null,
    message,
    points: 0,
  } satisfies TestCaseResult;
}

export async function judgeCode(
  host: SandboxHost,
  registry: RuntimeRegistry,
  request: JudgeRequest,
): Promise<ExecutionResult> {
  const result = blankResult(request.id ?? executionId());
  result.isolation = request.isolation ?? "namespaces";
  const { judge } = request;
  const started = Date.now();
  // Every sandbox of the run counts in its usage: compile, cases, checker (docs/usage.md).
  let used = emptyUsage();
  const count = (usage: ExecutionUsage | undefined): void => {
    if (usage) used = addUsage(used, usage);
    result.metrics.usage = used;
  };
  const program = await prepareProgram(host, registry, request, request.maxCompiledBytes, count);
  result.compile = program.compile;
  if (program.compile)
    request.onCompile?.({ cases: judge.cases.length, timeMs: Date.now() - started });
  if (!program.ok) {
    // Today's shape for a failed compile, and every case skipped.
    result.status = program.status;
    result.error = program.error;
    const cases = judge.cases.map((c, i) => unrun(i, c, "skipped", null));
    result.tests = summarize("compile_error", cases, judge);
    return result;
  }
  let checker: Ready | null = null;
  if (judge.checker) {
    const prepared = await prepareProgram(
      host,
      registry,
      {
        language: judge.checker.language,
        files: [
          {
            path: registry.resolve(judge.checker.language).definition.fileName,
            content: judge.checker.code,
          },
        ],
        limits: judge.checker.limits,
        signal: request.signal,
        isolation: request.isolation,
      },
      request.maxCompiledBytes,
      count,
    );
    if (!prepared.ok) {
      result.status = "failed";
      result.error = {
        code: "INVALID_REQUEST",
        message: `compare.checker: ${prepared.error?.message ?? `its compile step ended ${prepared.status}`}`,
        retryable: false,
      };
      const cases = judge.cases.map((c, i) => unrun(i, c, "skipped", null));
      result.tests = summarize("error", cases, judge);
      return result;
    }
    checker = prepared;
  }

  const cases: TestCaseResult[] = [];
  let stopped = false;
  let quotaStop: string | null = null;
  for (const [i, c] of judge.cases.entries()) {
    if (stopped || request.signal?.aborted) {
      cases.push(unrun(i, c, "skipped", null));
      continue;
    }
    // One run is one slot and one quota admission: without a bound, maxTests cases
    // of maxTimeout each would hold the slot for days, and a cpuSeconds quota sees
    // the CPU only when the run ends. Past the budget the rest are skipped.
    if (request.maxRunMs !== undefined && Date.now() - started > request.maxRunMs) {
      const seconds = Math.round(request.maxRunMs / 1000);
      cases.push(
        unrun(i, c, "skipped", `run time budget spent (${seconds} s, judging.maxRunSeconds)`),
      );
      continue;
    }
    // A quota on CPU-seconds or egress learns a run's use only when it ends; checked
    // between cases, a long run stops once its own use would pass the quota.
    const why = i > 0 && request.stopIf ? await request.stopIf(used) : null;
    if (why) {
      quotaStop = why;
      stopped = true;
      cases.push(unrun(i, c, "skipped", why));
      continue;
    }
    const one = await runCase(host, registry, request, program, checker, c, i, count);
    cases.push(one);
    request.onCase?.(one);
    if (one.verdict !== "accepted" && judge.stopOnFirstFailure) stopped = true;
  }
  const firstBad = cases.find((c) => c.verdict !== "accepted" && c.verdict !== "skipped");
  result.tests = summarize(
    firstBad?.verdict ?? (cases.some((c) => c.verdict === "skipped") ? "skipped" : "accepted"),
    cases,
    judge,
  );
  const allPassed = result.tests.verdict === "accepted";
  result.status = request.signal?.aborted ? "killed" : allPassed ? "completed" : "failed";
  result.success = result.status === "completed";
  const ran = cases.filter((c) => c.status !== null);
  result.metrics.executionTimeMs = ran.reduce((t, c) => t + c.timeMs, 0);
  result.metrics.cpuTimeMs = ran.reduce((t, c) => t + c.cpuTimeMs, 0);
  result.metrics.peakMemoryBytes = ran.reduce((m, c) => Math.max(m, c.peakMemoryBytes), 0);
  if (quotaStop) result.error = { code: "QUOTA_EXCEEDED", message: quotaStop, retryable: false };
  const broken = cases.find((c) => c.status === "error");
  if (broken)
    result.error = {
      code: "INTERNAL",
      message: `test ${broken.name}: ${broken.message ?? "sandbox failed"}`,
      retryable: false,
    };
  return result;
}

async function runCase(
  host: SandboxHost,
  registry: RuntimeRegistry,
  request: JudgeRequest,
  program: Ready,
  checker: Ready | null,
  c: JudgeCase,
  index: number,
  count: (usage: ExecutionUsage | undefined) => void,
): Promise<TestCaseResult> {
  const ran = await executeCode(host, registry, {
    language: request.language,
    files: program.files,
    entrypoint: program.entrypoint,
    skipCompile: program.skipCompile,
    env: request.env,
    stdin: c.stdin,
    args: c.args,
    limits: c.limits ?? request.limits,
    network: request.network,
    environment: request.environment,
    signal: request.signal,
    onBox: request.onBox,
    isolation: request.isolation,
  }).catch((error: unknown) => {
    const failed = blankResult("case", "error", {
      code: "INTERNAL",
      message: (error as Error).message,
      retryable: false,
    });
    return failed;
  });
  count(ran.metrics.usage);
  const status =
    ran.status === "queued" || ran.status === "running" || ran.status === "rejected"
      ? "error"
      : ran.status;
  let verdict = runVerdict(status);
  let diff: string | null = null;
  let message: string | null = verdict === "error" ? (ran.error?.message ?? null) : null;
  if (verdict === null) {
    if (checker && request.judge.checker) {
      const checked = await runChecker(
        host,
        registry,
        request.judge.checker,
        checker,
        { input: c.stdin ?? "", expected: c.expectedOutput ?? "", actual: ran.stdout },
        request.signal,
        count,
        request.isolation,
      ).catch((error: unknown) => ({
        verdict: "error" as const,
        message: `checker: ${(error as Error).message}`,
      }));
      verdict = checked.verdict;
      message = checked.message;
    } else if (c.expectedOutput === undefined) verdict = "accepted";
    else {
      diff = compareOutput(ran.stdout, c.expectedOutput, request.judge.compare);
      verdict = diff === null ? "accepted" : "wrong_answer";
    }
  }
  const stdout = head(ran.stdout, request.caseOutputBytes);
  const stderr = head(ran.stderr, request.caseOutputBytes);
  return {
    index,
    name: c.name,
    verdict,
    status,
    exitCode: ran.exitCode,
    signal: ran.signal,
    timeMs: ran.metrics.executionTimeMs,
    cpuTimeMs: ran.metrics.cpuTimeMs,
    peakMemoryBytes: ran.metrics.peakMemoryBytes,
    stdout: stdout.text,
    stderr: stderr.text,
    truncated: {
      stdout: ran.truncated.stdout || stdout.cut,
      stderr: ran.truncated.stderr || stderr.cut,
    },
    diff,
    message,
    points: verdict === "accepted" ? c.points : 0,
  };
}

function summarize(verdict: Verdict, cases: TestCaseResult[], judge: JudgeSpec): TestsSummary {
  const count = (v: Verdict): number => cases.filter((c) => c.verdict === v).length;
  const skipped = count("skipped");
  const passed = count("accepted");
  return {
    verdict,
    total: cases.length,
    passed,
    failed: cases.length - passed - skipped,
    skipped,
    score: cases.reduce((s, c) => s + c.points, 0),
    maxScore: judge.cases.reduce((s, c) => s + c.points, 0),
    cases,
  };
}
