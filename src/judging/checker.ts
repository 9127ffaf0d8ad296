/**
 * A custom checker: the problem setter's program, compiled once like the
 * solution and run per case in a sandbox of its OWN (never the solution's:
 * the solution must not be able to leave a file that the checker reads as
 * its verdict). It gets input.txt, expected.txt and actual.txt in its
 * workspace; exit 0 accepts, exit 1 is wrong_answer, anything else is error;
 * the first line of its stdout (bounded) is the case's message.
 */
import type { Verdict } from "../contract/judging.js";
import { executeCode } from "../runtimes/execute.js";
import type { ExecutionUsage } from "../contract/usage.js";
import type { Isolation } from "../contract/isolation.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { PreparedProgram } from "./program.js";
import type { JudgeChecker } from "./types.js";

const MESSAGE_CHARS = 256;

/** Names of the files the checker reads; a checker's own file must not take one. */
export const CHECKER_FILES = ["input.txt", "expected.txt", "actual.txt"] as const;

export interface CheckerOutcome {
  verdict: Verdict;
  message: string | null;
}

export async function runChecker(
  host: SandboxHost,
  registry: RuntimeRegistry,
  checker: JudgeChecker,
  program: Extract<PreparedProgram, { ok: true }>,
  io: { input: string; expected: string; actual: string },
  signal: AbortSignal | undefined,
  count?: (usage: ExecutionUsage | undefined) => void,
  /** The checker is the request's code too: it runs in the run's tier. */
  isolation?: Isolation,
): Promise<CheckerOutcome> {
  const ran = await executeCode(host, registry, {
    language: checker.language,
    files: [
      ...program.files.filter((f) => !(CHECKER_FILES as readonly string[]).includes(f.path)),
      { path: "input.txt", content: io.input },
      { path: "expected.txt", content: io.expected },
      { path: "actual.txt", content: io.actual },
    ],
    entrypoint: program.entrypoint,
    skipCompile: program.skipCompile,
    limits: checker.limits,
    signal,
    isolation,
  });
  count?.(ran.metrics.usage);
  const firstLine = ran.stdout.split("\n", 1)[0] ?? "";
  const message = firstLine ? firstLine.slice(0, MESSAGE_CHARS) : null;
  if (ran.status === "completed") return { verdict: "accepted", message };
  if (ran.status === "failed" && ran.exitCode === 1) return { verdict: "wrong_answer", message };
  const how =
    ran.status !== "failed"
      ? `status ${ran.status}`
      : ran.exitCode !== null
        ? `exit code ${ran.exitCode}`
        : `signal ${ran.signal ?? "?"}`;
  return { verdict: "error", message: `checker failed (${how})${message ? `: ${message}` : ""}` };
}
