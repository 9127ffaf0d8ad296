/**
 * Judge0's statuses, and how a Warden result reads as one. Judge0 decides
 * from isolate's report (TO, SG with a signal, RE, XX) and, for a clean exit,
 * from comparing stdout with expected_output; the same order holds here:
 *
 * | Warden                               | Judge0                                 |
 * |--------------------------------------|----------------------------------------|
 * | queued / running                     | 1 In Queue / 2 Processing              |
 * | compile step failed                  | 6 Compilation Error                    |
 * | timeout, or CPU past cpu_time_limit  | 5 Time Limit Exceeded                  |
 * | failed by SIGSEGV/SIGXFSZ/SIGFPE/SIGABRT | 7 / 8 / 9 / 10                     |
 * | failed by another signal, killed     | 12 Runtime Error (Other)               |
 * | memory_limit (cgroup OOM: SIGKILL)   | 12, exit_signal 9, as isolate reports  |
 * | output_limit, disk_limit             | 8 SIGXFSZ (isolate's file-size limit)  |
 * | failed with an exit code             | 11 Runtime Error (NZEC)                |
 * | error, rejected (policy)             | 13 Internal Error                      |
 * | completed                            | 3 Accepted / 4 Wrong Answer            |
 */
import { constants } from "node:os";
import type { ExecutionResult, ExecutionStatus } from "../../contract/result.js";
import type { RunStatus } from "../../contract/status.js";

export const JUDGE0_STATUSES = [
  { id: 1, description: "In Queue" },
  { id: 2, description: "Processing" },
  { id: 3, description: "Accepted" },
  { id: 4, description: "Wrong Answer" },
  { id: 5, description: "Time Limit Exceeded" },
  { id: 6, description: "Compilation Error" },
  { id: 7, description: "Runtime Error (SIGSEGV)" },
  { id: 8, description: "Runtime Error (SIGXFSZ)" },
  { id: 9, description: "Runtime Error (SIGFPE)" },
  { id: 10, description: "Runtime Error (SIGABRT)" },
  { id: 11, description: "Runtime Error (NZEC)" },
  { id: 12, description: "Runtime Error (Other)" },
  { id: 13, description: "Internal Error" },
  { id: 14, description: "Exec Format Error" },
] as const;

export type Judge0Status = { id: number; description: string };
const status = (id: number): Judge0Status => ({ ...JUDGE0_STATUSES[id - 1]! });

/** Judge0's comparison: each line's trailing whitespace, then the text's, ignored. */
export function judge0Strip(text: string): string {
  return text
    .split("\n")
    .map((l) => l.replace(/[ \t\n\v\f\r\0]+$/, ""))
    .join("\n")
    .replace(/[ \t\n\v\f\r\0]+$/, "");
}

/** What decides a submission's verdict besides its result. */
export interface Judging {
  expectedOutput: string | null;
  /** cpu_time_limit (s); 0: none. A run past it in its extra time is TLE, as isolate says. */
  cpuTimeLimit: number;
  redirectStderrToStdout: boolean;
}

export interface Judge0Outcome {
  status: Judge0Status;
  stdout: string | null;
  stderr: string | null;
  compile_output: string | null;
  message: string | null;
  time: string | null;
  wall_time: string | null;
  memory: number | null;
  exit_code: number | null;
  exit_signal: number | null;
}

const orNull = (s: string | undefined | null): string | null => (s ? s : null);
const seconds = (ms: number): string => (ms / 1000).toFixed(3);
const signo = (name: string | null): number | null =>
  name ? ((constants.signals as Record<string, number>)[name] ?? null) : null;

interface RunEnd {
  status: RunStatus | null;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** The status, message and signal of one run, before comparing its output. */
function runStatus(
  run: RunEnd,
): { status: Judge0Status; message: string | null; signal: number | null } | null {
  const sig = signo(run.signal);
  switch (run.status) {
    case "completed":
    case null:
      return null;
    case "timeout":
      return { status: status(5), message: "Time limit exceeded", signal: sig };
    case "memory_limit":
      return { status: status(12), message: "Memory limit exceeded", signal: 9 };
    case "output_limit":
      return { status: status(8), message: "Output limit exceeded", signal: 25 };
    case "disk_limit":
      return { status: status(8), message: "Disk limit exceeded", signal: sig ?? 25 };
    case "killed":
      return { status: status(12), message: "Killed", signal: sig ?? 9 };
    case "error":
      return { status: status(13), message: "Internal error", signal: null };
    case "failed": {
      if (sig === null)
        return {
          status: status(11),
          message: `Exited with error status ${run.exitCode}`,
          signal: null,
        };
      const bySignal: Record<number, number> = { 11: 7, 25: 8, 8: 9, 6: 10 };
      return {
        status: status(bySignal[sig] ?? 12),
        message: `Caught fatal signal ${sig}`,
        signal: sig,
      };
    }
  }
}

const pending = (id: 1 | 2): Judge0Outcome => ({
  status: status(id),
  stdout: null,
  stderr: null,
  compile_output: null,
  message: null,
  time: null,
  wall_time: null,
  memory: null,
  exit_code: null,
  exit_signal: null,
});

/** A submission's Judge0 answer from its execution's status and (final) result. */
export function judge0Outcome(
  execStatus: ExecutionStatus,
  result: ExecutionResult | null,
  judging: Judging,
): Judge0Outcome {
  if (execStatus === "queued" || !result) return pending(execStatus === "running" ? 2 : 1);
  if (execStatus === "running") return pending(2);
  const compile = result.compile;
  const compileOutput = compile ? orNull(compile.stdout + compile.stderr) : null;
  const base = { ...pending(1), compile_output: compileOutput };
  if (execStatus === "rejected" || (execStatus === "error" && !compile && result.exitCode === null))
    return { ...base, status: status(13), message: result.error?.message ?? "Internal error" };
  if (compile && compile.status !== "completed") {
    if (compile.status === "error")
      return { ...base, status: status(13), message: result.error?.message ?? "Internal error" };
    return {
      ...base,
      status: status(6),
      compile_output:
        compile.status === "timeout" ? "Compilation time limit exceeded." : compileOutput,
    };
  }
  // A test-case run (number_of_runs > 1): Judge0 reports the last run and averages.
  const tests = result.tests;
  const ran = tests?.cases.filter((c) => c.verdict !== "skipped") ?? [];
  const last = ran.at(-1);
  const run: RunEnd = last
    ? {
        status: last.status,
        exitCode: last.exitCode,
        signal: last.signal,
        stdout: last.stdout,
        stderr: last.stderr,
      }
    : {
        status: execStatus,
        exitCode: result.exitCode,
        signal: result.signal,
        stdout: result.stdout,
        stderr: result.stderr,
      };
  const mean = (f: (c: (typeof ran)[number]) => number): number =>
    ran.reduce((s, c) => s + f(c), 0) / ran.length;
  const cpuMs = last ? mean((c) => c.cpuTimeMs) : result.metrics.cpuTimeMs;
  const wallMs = last ? mean((c) => c.timeMs) : result.metrics.executionTimeMs;
  const memoryBytes = last ? mean((c) => c.peakMemoryBytes) : result.metrics.peakMemoryBytes;
  const ended = runStatus(run);
  let verdict: Judge0Status;
  if (ended) verdict = ended.status;
  else if (judging.cpuTimeLimit > 0 && cpuMs > judging.cpuTimeLimit * 1000) verdict = status(5);
  else if (last) verdict = last.verdict === "wrong_answer" ? status(4) : status(3);
  else if (
    judging.expectedOutput !== null &&
    judge0Strip(judging.expectedOutput) !== judge0Strip(run.stdout)
  )
    verdict = status(4);
  else verdict = status(3);
  const merged = judging.redirectStderrToStdout;
  return {
    status: verdict,
    stdout: orNull(merged ? run.stdout + run.stderr : run.stdout),
    stderr: merged ? null : orNull(run.stderr),
    compile_output: compileOutput,
    message: ended?.message ?? (verdict.id === 5 ? "Time limit exceeded" : null),
    time: seconds(cpuMs),
    wall_time: seconds(wallMs),
    memory: Math.round(memoryBytes / 1024),
    exit_code: run.exitCode ?? 0,
    exit_signal: ended?.signal ?? null,
  };
}
