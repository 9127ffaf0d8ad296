/**
 * Runs source code in a language: an optional compile step in its own
 * sandbox with its own limits, then the program, both in one box (they share
 * the workspace). Produces the result shape every interface returns.
 */
import { opendirSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import {
  blankResult,
  type ArtifactEntry,
  type ExecutionResult,
  type RejectedArtifact,
  type StepResult,
} from "../contract/result.js";
import { WardenError, type ErrorInfo } from "../errors.js";
import type { SandboxHost } from "../sandbox/host.js";
import type {
  OutputChunk,
  RunResult,
  SandboxFile,
  SandboxLimits,
  SandboxEnvironment,
  SandboxNetwork,
} from "../sandbox/types.js";
import { executionId } from "../util/ids.js";
import { javaEntry } from "./java.js";
import { BASE_ENV, type SandboxBox as Box } from "../sandbox/box.js";
import {
  expandTemplate,
  privateMountsFor,
  type ResolvedRuntime,
  type RuntimeRegistry,
} from "./registry.js";
import { runtimeTemplate } from "./warm.js";
import type { Isolation } from "../contract/isolation.js";

/**
 * A request's own limits for the compile step (already validated against the
 * maxima); each unset one falls back to the runtime's compile defaults.
 */
export interface CompileLimits {
  timeoutMs?: number | undefined;
  cpuTimeMs?: number | undefined;
  memoryMb?: number | undefined;
}

/**
 * Where a run is, for interactive clients (Piston's socket): a step starts,
 * or the compile step ends with its result (the run's end is the result).
 */
export type StageEvent =
  | { stage: "compile" | "run"; phase: "start" }
  | { stage: "compile"; phase: "end"; result: StepResult };

export interface ExecuteRequest {
  language: string;
  /** Source files; the entry point is `entrypoint` or the first file. */
  files: SandboxFile[];
  entrypoint?: string | undefined;
  /** Written and closed; or a stream piped to the program for its whole life (interactive). */
  stdin?: string | Readable | undefined;
  args?: string[] | undefined;
  env?: Record<string, string> | undefined;
  /** Told when a step starts and when the compile step ends. */
  onStage?: ((event: StageEvent) => void) | undefined;
  /** Limits of the program run (already validated against the maxima). */
  limits: SandboxLimits;
  /** Limits of the compile step, where the request set them. */
  compileLimits?: CompileLimits | undefined;
  onOutput?: ((chunk: OutputChunk) => void) | undefined;
  signal?: AbortSignal | undefined;
  id?: string | undefined;
  /** Egress for the program (not its compile step); absent = no network. */
  network?: SandboxNetwork | undefined;
  /** A prebuilt environment to mount (absent: the host's own packages). */
  environment?: SandboxEnvironment | null | undefined;
  /** Told which box runs the code, for audit and leak checks. */
  onBox?: ((box: { id: string; uid: number }) => void) | undefined;
  /**
   * Artifact collection is a service step; the engine only keeps the workspace
   * for it. When the program has ended (every process of the sandbox gone) and
   * `keepIf` (relative to /workspace) has entries, `collect` reads the workspace
   * (a host path). It must not throw: the program has run and must not run again.
   */
  artifacts?: ArtifactCollection | undefined;
  /** Judging: `files` already hold what the compile step made, so it is not run again. */
  skipCompile?: boolean | undefined;
  /** The tier the box runs in (resolved by the caller: executions/isolation.ts). @default "namespaces" */
  isolation?: Isolation | undefined;
  /**
   * Judging: compile only. Once the compile step succeeded, this gets the
   * workspace (a host path, null if the box cannot show it) and the program
   * is not run; the result has `compile` and status completed.
   */
  onCompiled?: ((workspace: string | null) => Promise<void>) | undefined;
}

export interface ArtifactCollection {
  keepIf: string;
  collect(workspace: string): Promise<{ artifacts: ArtifactEntry[]; rejected: RejectedArtifact[] }>;
}

const COMPILE_TIMEOUT_MS = 60_000;

function step(r: RunResult): StepResult {
  return {
    status: r.status,
    exitCode: r.exitCode,
    signal: r.signal,
    stdout: r.stdout,
    stderr: r.stderr,
    truncated: r.truncated,
    metrics: {
      executionTimeMs: r.metrics.wallTimeMs,
      cpuTimeMs: r.metrics.cpuTimeMs,
      peakMemoryBytes: r.metrics.peakMemoryBytes,
    },
  };
}

/**
 * Java: the entry file goes under its public class's name (javac's rule) and
 * `{mainClass}` names the class with main, so any class name works.
 */
function sourceEntry(
  files: SandboxFile[],
  entry: string,
): { files: SandboxFile[]; entry: string; mainClass: string } {
  const file = files.find((f) => f.path === entry)!;
  const found = javaEntry(file.content.toString(), entry);
  const dir = entry.includes("/") ? entry.slice(0, entry.lastIndexOf("/") + 1) : "";
  const path = `${dir}${found.fileName}`;
  if (path === entry) return { files, entry, mainClass: found.mainClass };
  if (files.some((f) => f.path === path))
    throw new WardenError(
      "INVALID_REQUEST",
      `files: ${entry} declares a public class that must be saved as ${path}, which is another file`,
    );
  return {
    files: files.map((f) => (f === file ? { ...f, path } : f)),
    entry: path,
    mainClass: found.mainClass,
  };
}

export async function executeCode(
  host: SandboxHost,
  registry: RuntimeRegistry,
  request: ExecuteRequest,
): Promise<ExecutionResult> {
  const result = blankResult(request.id ?? executionId());
  const runtime = registry.resolve(request.language);
  const def = runtime.definition;
  if (request.files.length === 0)
    throw new WardenError("INVALID_REQUEST", "files: at least one file is needed");
  let entry = request.entrypoint ?? request.files[0]!.path;
  if (!request.files.some((f) => f.path === entry))
    throw new WardenError("INVALID_REQUEST", `entrypoint: no file named ${entry}`);
  let files = request.files;
  let mainClass: string | undefined;
  if (def.entryFromSource === "java") ({ files, entry, mainClass } = sourceEntry(files, entry));

  const vars = {
    ...runtime.tools,
    file: entry,
    memoryMb: String(request.limits.memoryMb),
    ...(mainClass ? { mainClass } : {}),
  };
  const mounts = privateMountsFor(runtime, (name) => host.privateFile(name));
  // The environment's variables are Warden's, set like the runtime's: the
  // request's own still win (and then a warm stub runs it cold).
  const env = { ...def.env, ...request.environment?.env, ...request.env };
  // The request's compile limits win; otherwise compilers get the runtime's
  // (larger) defaults, never less than the program's own.
  const asked = request.compileLimits ?? {};
  const compileLimits: SandboxLimits = {
    ...request.limits,
    memoryMb: asked.memoryMb ?? Math.max(request.limits.memoryMb, def.compileLimits.memoryMb ?? 0),
    pids: Math.max(request.limits.pids, def.compileLimits.pids ?? 0),
    timeoutMs: asked.timeoutMs ?? def.compileLimits.timeoutMs ?? COMPILE_TIMEOUT_MS,
    cpuTimeMs: asked.cpuTimeMs,
  };
  const compileArgv =
    def.compile && !request.skipCompile
      ? expandTemplate(def.compile, { ...vars, memoryMb: String(compileLimits.memoryMb) })
      : undefined;
  const runArgv = [...expandTemplate(def.run, vars), ...(request.args ?? [])];
  const box = await takeOrPrepare(host, runtime, {
    files,
    limits: compileArgv ? compileLimits : request.limits,
    argv: compileArgv ?? runArgv,
    env,
    network: compileArgv ? undefined : request.network,
    environment: request.environment ?? undefined,
    isolation: request.isolation ?? "namespaces",
  });
  result.isolation = request.isolation ?? "namespaces";
  request.onBox?.({ id: box.id, uid: box.uid });
  try {
    if (compileArgv) {
      request.onStage?.({ stage: "compile", phase: "start" });
      const compiled = await box.run({
        argv: compileArgv,
        env,
        limits: compileLimits,
        mounts,
        signal: request.signal,
      });
      result.compile = step(compiled);
      request.onStage?.({ stage: "compile", phase: "end", result: result.compile });
      if (compiled.status !== "completed") {
        // The program never ran: the outcome is the compiler's.
        result.status = compiled.status;
        result.error = compileError(compiled);
        return result;
      }
      if (request.onCompiled) {
        await request.onCompiled(box.deadWorkspace);
        return Object.assign(result, { status: "completed", success: true });
      }
    }
    request.onStage?.({ stage: "run", phase: "start" });
    const ran = await box.run({
      argv: runArgv,
      env,
      stdin: request.stdin,
      limits: request.limits,
      mounts,
      onOutput: request.onOutput,
      signal: request.signal,
      network: request.network,
    });
    const workspace = box.deadWorkspace;
    if (
      request.artifacts &&
      workspace &&
      ran.status !== "error" &&
      hasEntries(join(workspace, request.artifacts.keepIf))
    ) {
      const collected = await request.artifacts.collect(workspace);
      result.artifacts = collected.artifacts;
      result.rejectedArtifacts = collected.rejected;
    }
    Object.assign(result, {
      status: ran.status,
      success: ran.status === "completed",
      exitCode: ran.exitCode,
      signal: ran.signal,
      stdout: ran.stdout,
      stderr: ran.stderr,
      truncated: ran.truncated,
      metrics: {
        ...result.metrics,
        executionTimeMs: ran.metrics.wallTimeMs,
        cpuTimeMs: ran.metrics.cpuTimeMs,
        peakMemoryBytes: ran.metrics.peakMemoryBytes,
        warmStart: box.tookWarm,
        ...(ran.metrics.platform ? { platform: ran.metrics.platform } : {}),
      },
    });
    if (ran.status === "error")
      result.error = {
        code: "INTERNAL",
        message: `sandbox failed: ${ran.errorMessage ?? "unknown"}`,
        retryable: false,
      };
    return result;
  } finally {
    result.metrics.usage = box.usage(); // every step's use, compile included (docs/usage.md)
    // The result is known: the box goes away off the caller's path.
    host.track(box.destroy());
  }
}

/**
 * Whether a run left anything to collect: most leave output/ empty, and then
 * nothing is read. Synchronous on purpose: it is one directory read on a
 * tmpfs, on every run's path, and the thread pool may be busy with sandbox
 * starts and teardowns that wait in the kernel. (A symlink put in its place is
 * followed here, harmlessly: only the answer is used, and collection itself
 * never follows one.)
 */
function hasEntries(dir: string): boolean {
  try {
    const handle = opendirSync(dir);
    try {
      return handle.readSync() !== null;
    } finally {
      handle.closeSync();
    }
  } catch {
    return false;
  }
}

/** A started box from the warm pool when the first run can take one, else a cold one. */
async function takeOrPrepare(
  host: SandboxHost,
  runtime: ResolvedRuntime,
  first: {
    files: SandboxFile[];
    limits: SandboxLimits;
    argv: string[];
    env: Record<string, string>;
    network: SandboxNetwork | undefined;
    environment: SandboxEnvironment | undefined;
    isolation: Isolation;
  },
): Promise<Box> {
  // The tier is part of the template's key: a gvisor run takes only a gVisor box.
  const template = await runtimeTemplate(
    host,
    runtime,
    first.limits,
    first.environment,
    first.isolation,
  );
  const warm =
    first.network === undefined && template.accepts(first.argv, { ...BASE_ENV, ...first.env })
      ? host.pool.take(template)
      : undefined;
  if (!warm)
    return host.prepare({
      diskMb: first.limits.diskMb,
      files: first.files,
      binds: first.environment?.binds,
      isolation: first.isolation,
    });
  try {
    warm.provide(first.files);
  } catch (error) {
    host.track(warm.destroy());
    throw error;
  }
  return warm;
}

/** A failed compile is the code's fault (INVALID_CODE), unless Warden failed or someone killed it. */
function compileError(r: RunResult): ErrorInfo | null {
  const invalid = (why: string): ErrorInfo => ({
    code: "INVALID_CODE",
    message: `compilation ${why}`,
    retryable: false,
  });
  switch (r.status) {
    case "killed":
    case "completed":
      return null;
    case "error":
      return {
        code: "INTERNAL",
        message: `compile step failed: ${r.errorMessage ?? "unknown"}`,
        retryable: false,
      };
    case "failed":
      return invalid(`failed with exit code ${r.exitCode ?? r.signal}`);
    case "timeout":
      return invalid("exceeded its time limit");
    case "memory_limit":
      return invalid("exceeded its memory limit");
    case "output_limit":
      return invalid("produced too much output");
    case "disk_limit":
      return invalid("filled the disk");
  }
}
