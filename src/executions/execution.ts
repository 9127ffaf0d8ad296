/**
 * One execution as the service tracks it: the request, its place in the
 * lifecycle (queued → running → a final status), its output as it streams,
 * and a promise of its result.
 */
import { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import type { ErrorInfo } from "../errors.js";
import type { EgressPolicy } from "../network/policy.js";
import type { SandboxEnvironment } from "../sandbox/types.js";
import { blankResult, type ExecutionResult, type ExecutionStatus } from "../contract/result.js";
import type { TestCaseResult } from "../contract/judging.js";
import type { CompileLimits, StageEvent } from "../runtimes/execute.js";
import type { JudgeSpec } from "../judging/types.js";
import type { Isolation } from "../contract/isolation.js";
import type { OutputChunk, SandboxFile, SandboxLimits } from "../sandbox/types.js";

/** Where a request came from, for audit. */
export type ExecutionSource = "api" | "piston" | "judge0" | "library" | "mcp" | "cli";

export interface ExecutionRequest {
  language: string;
  files: SandboxFile[];
  entrypoint?: string | undefined;
  stdin?: string | undefined;
  /**
   * In process only (Piston's socket): piped to the program instead of
   * `stdin`, for its whole life. Never stored or queued across nodes.
   */
  stdinStream?: Readable | undefined;
  args?: string[] | undefined;
  env?: Record<string, string> | undefined;
  limits: SandboxLimits;
  /** The request's own compile-step limits (compiled languages). */
  compileLimits?: CompileLimits | undefined;
  /** Egress policy for the program; null = no network. */
  network: EgressPolicy | null;
  /** A prebuilt environment mounted for the program; absent = the host's packages. */
  environment?: SandboxEnvironment | null | undefined;
  /**
   * The tier it runs in, resolved from the request, its key and the server
   * (executions/isolation.ts; toExecutionRequest always sets it). Absent: namespaces.
   */
  isolation?: Isolation | undefined;
  /** Files (relative to /workspace) to return as artifacts besides those under output/. */
  artifacts?: string[] | undefined;
  /** Retry Warden's own transient failures (never the program). @default true */
  retryOnFailure: boolean;
  userId: string;
  keyId?: string | undefined;
  source: ExecutionSource;
  /** A test-case run: the program runs once per case (src/judging/). */
  judge?: JudgeSpec | undefined;
}

export interface ExecutionEvents {
  output: [OutputChunk];
  status: [ExecutionStatus];
  /** A test-case run: one case's verdict, as soon as it is known. */
  test: [TestCaseResult];
  /** A step started, or the compile step ended (interactive clients). */
  stage: [StageEvent];
  end: [ExecutionResult];
}

export class Execution extends EventEmitter<ExecutionEvents> {
  status: ExecutionStatus = "queued";
  readonly createdAt = Date.now();
  startedAt: number | null = null;
  finishedAt: number | null = null;
  retries = 0;
  result: ExecutionResult | null = null;
  /** Output so far, replayed to late stream subscribers (bounded by the output caps). */
  readonly chunks: OutputChunk[] = [];
  /** A test-case run's cases so far, replayed to late subscribers (bounded by judging.maxTests). */
  readonly tests: TestCaseResult[] = [];
  readonly abort = new AbortController();
  killReason: string | null = null;
  /** The box running it (its cgroups are `<boxId>-<run>`), for live monitoring. */
  boxId: string | null = null;
  readonly done: Promise<ExecutionResult>;
  private resolveDone!: (result: ExecutionResult) => void;

  constructor(
    readonly id: string,
    readonly request: ExecutionRequest,
  ) {
    super();
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get userId(): string {
    return this.request.userId;
  }

  pushOutput(chunk: OutputChunk): void {
    this.chunks.push(chunk);
    this.emit("output", chunk);
  }

  pushTest(result: TestCaseResult): void {
    this.tests.push(result);
    this.emit("test", result);
  }

  setStatus(status: ExecutionStatus): void {
    this.status = status;
    this.emit("status", status);
  }

  finish(result: ExecutionResult): void {
    if (this.result) return;
    this.finishedAt = Date.now();
    this.result = result;
    this.status = result.status;
    this.emit("end", result);
    this.resolveDone(result);
  }

  /** A final result for an execution that never ran (rejected, killed or dropped while queued). */
  finishWithout(status: ExecutionStatus, error: ErrorInfo | null): void {
    this.finish(
      blankResult(this.id, status, error, {
        queueTimeMs: Date.now() - this.createdAt,
        retries: this.retries,
      }),
    );
  }
}
