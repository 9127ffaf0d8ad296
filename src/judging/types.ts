/**
 * A test-case run as the engine takes it: the request's cases with their
 * limits resolved within the server's maxima, how outputs are compared, and
 * the checker. Built by src/judging/request.ts; carried on ExecutionRequest
 * (and in a cluster's job row) as `judge`.
 */
import type { RunStatus } from "../contract/status.js";
import type { Verdict } from "../contract/judging.js";
import type { SandboxLimits } from "../sandbox/types.js";
import type { CompareRule } from "./compare.js";

export interface JudgeCase {
  name: string;
  stdin?: string | undefined;
  args?: string[] | undefined;
  /** Absent: any output passes (only the run's end decides). */
  expectedOutput?: string | undefined;
  /** This case's own limits; absent: the run's. */
  limits?: SandboxLimits | undefined;
  points: number;
}

export interface JudgeChecker {
  language: string;
  code: string;
  limits: SandboxLimits;
}

export interface JudgeSpec {
  /** The request's own cases; empty when they come from `suiteId`. */
  cases: JudgeCase[];
  /** An uploaded test suite (POST /v1/test-suites), loaded from the store when the run starts. */
  suiteId?: string | undefined;
  compare: CompareRule;
  /** Present exactly when `compare.mode` is checker. */
  checker?: JudgeChecker | undefined;
  stopOnFirstFailure: boolean;
}

/** A case's verdict from how its run ended; null: it completed, the comparison decides. */
export function runVerdict(status: RunStatus): Verdict | null {
  switch (status) {
    case "completed":
      return null;
    case "timeout":
      return "time_limit";
    case "memory_limit":
      return "memory_limit";
    case "output_limit":
      return "output_limit";
    case "failed":
    case "disk_limit":
      return "runtime_error";
    case "killed":
    case "error":
      return "error";
  }
}

/**
 * The most memory a test-case run's own sandboxes hold at once (one at a
 * time): its cases' own limits and its checker's run and compile; 0 without.
 */
export function judgeMemoryMb(
  judge: JudgeSpec | undefined,
  compileMbOf: (language: string) => number,
): number {
  if (!judge) return 0;
  const sizes = judge.cases.map((c) => c.limits?.memoryMb ?? 0);
  if (judge.checker) sizes.push(judge.checker.limits.memoryMb, compileMbOf(judge.checker.language));
  return Math.max(0, ...sizes);
}
