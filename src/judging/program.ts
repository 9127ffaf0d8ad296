/**
 * A program made ready to run on many inputs: compiled ONCE in a sandbox of
 * its own (compiled languages), its workspace read out bounded, and the files
 * every case's fresh sandbox starts from. Interpreted languages need nothing:
 * their files are the request's.
 */

import type { ErrorInfo } from "../errors.js";
import { executeCode, type ExecuteRequest } from "../runtimes/execute.js";
import type { ExecutionUsage } from "../contract/usage.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { ExecutionStatus, StepResult } from "../contract/result.js";
import type { SandboxFile } from "../sandbox/types.js";
import { readCompiledWorkspace, type CompiledWorkspace } from "./workspace.js";

const UNREADABLE = "the compiled workspace could not be read";

export type PreparedProgram =
  | {
      ok: true;
      /** What each case's sandbox starts from; `skipCompile` when they are compiled. */
      files: SandboxFile[];
      entrypoint: string;
      skipCompile: boolean;
      compile: StepResult | null;
    }
  | { ok: false; status: ExecutionStatus; compile: StepResult | null; error: ErrorInfo | null };

export type ProgramRequest = Pick<
  ExecuteRequest,
  | "language"
  | "files"
  | "entrypoint"
  | "env"
  | "limits"
  | "compileLimits"
  | "signal"
  | "onBox"
  | "environment"
  | "isolation"
>;

/** Compiles `request` once (if its language compiles) and returns what its runs start from. */
export async function prepareProgram(
  host: SandboxHost,
  registry: RuntimeRegistry,
  request: ProgramRequest,
  maxCompiledBytes: number,
  /** Told what each sandbox used (usage accounting adds every step). */
  count?: (usage: ExecutionUsage | undefined) => void,
): Promise<PreparedProgram> {
  const entrypoint = request.entrypoint ?? request.files[0]?.path ?? "";
  const def = registry.resolve(request.language).definition;
  if (!def.compile)
    return { ok: true, files: request.files, entrypoint, skipCompile: false, compile: null };
  let read: CompiledWorkspace | null = null;
  const compiled = await executeCode(host, registry, {
    ...request,
    onCompiled: async (workspace) => {
      read = workspace
        ? await readCompiledWorkspace(workspace, maxCompiledBytes)
        : { problem: UNREADABLE };
    },
  });
  count?.(compiled.metrics.usage);
  // (`read` is set in a callback: TypeScript's narrowing of it here would say never.)
  const got = read as CompiledWorkspace | null;
  if (compiled.status !== "completed" || !got)
    return { ok: false, status: compiled.status, compile: compiled.compile, error: compiled.error };
  if ("problem" in got) {
    // What the compile step left is the code's doing (or the box could not show it: Warden's).
    const ours = got.problem === UNREADABLE;
    return {
      ok: false,
      status: ours ? "error" : "disk_limit",
      compile: compiled.compile,
      error: {
        code: ours ? "INTERNAL" : "INVALID_CODE",
        message: ours
          ? got.problem
          : `compilation left ${got.problem} in the workspace (judging.maxCompiledMb)`,
        retryable: false,
      },
    };
  }
  // The request's own files as given, plus what the compile step made or changed.
  // (A source the runtime renamed, Java's, comes back byte-identical: it is
  // renamed again the same way in each case's run.)
  const given = request.files;
  const givenPaths = new Set(given.map((g) => g.path));
  const givenBytes = given.map((g) => Buffer.from(g.content));
  const made = got.files.filter((f) => {
    if (givenPaths.has(f.path)) return false;
    const bytes = Buffer.from(f.content);
    return !givenBytes.some((g) => g.equals(bytes));
  });
  return {
    ok: true,
    files: [...given, ...made],
    entrypoint,
    skipCompile: true,
    compile: compiled.compile,
  };
}
