/**
 * One connection of Piston's interactive socket (`WS /api/v2/connect`), with
 * Piston's wire format (engineer-man/piston api/src/api/v2.js): the client
 * sends `init` (an execute request), then `data` (stdin) and `signal`; the
 * server sends `runtime`, `stage`, `data` (stdout/stderr), `exit` per stage,
 * and `error` before closing with 4002. The run is an ordinary execution
 * (runCode: policy, fair queue, record, audit, kill); its stdin is a stream
 * fed by `data` messages. Everything the client sends is bounded: the frame
 * (maxPayload, set on the server), the JSON's depth and keys, the total
 * stdin (maxStdinBytes) and the time to init; what the client does not read
 * is bounded too (MAX_UNSENT_BYTES), so a silent reader cannot grow memory.
 */
import { PassThrough } from "node:stream";
import type { WebSocket } from "ws";
import type { Config } from "../../config/schema.js";
import type { Execution } from "../../executions/execution.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import { createExecutionSchemas, type CreateExecutionInput } from "../../executions/request.js";
import { runCode, type RunActor } from "../../executions/run-code.js";
import { RunStatusSchema, type ExecutionResult, type StepResult } from "../../contract/result.js";
import type { Analyzer } from "../../policy/analyzer.js";
import type { StageEvent } from "../../runtimes/execute.js";
import type { RuntimeRegistry } from "../../runtimes/registry.js";
import type { OutputChunk } from "../../sandbox/types.js";
import { toWardenError } from "../errors.js";
import { checkJsonBounds } from "../json-body.js";
import { letter, message, pistonRuntimes, versionMatches } from "./piston.js";
import { pistonInput, PistonRequestError } from "./piston-request.js";

/** Piston's close codes (4000-4005, 4999), plus Warden's 4010 for a node without sandboxes. */
export const CLOSE = {
  alreadyInitialized: [4000, "Already Initialized"],
  initTimeout: [4001, "Initialization Timeout"],
  notified: [4002, "Notified Error"],
  notInitialized: [4003, "Not yet Initialized"],
  stdinOnly: [4004, "Can only write to stdin"],
  invalidSignal: [4005, "Invalid Signal"],
  needsSandboxes: [4010, "Interactive runs need a node that runs sandboxes"],
  completed: [4999, "Job Completed"],
} as const;

/** Piston closes a socket that sent no `init` within a second. */
export const INIT_TIMEOUT_MS = 1000;
/**
 * Output queued for a client that is not reading it: past this the run is
 * killed and the socket dropped, so the queue (Warden's memory) stays bounded.
 */
export const MAX_UNSENT_BYTES = 1024 * 1024;
/** After a close frame, how long the client has to answer before the socket is cut. */
const CLOSE_GRACE_MS = 2000;

const RT = [
  ...Array.from({ length: 16 }, (_, i) => (i === 0 ? "SIGRTMIN" : `SIGRTMIN+${i}`)),
  ...Array.from({ length: 15 }, (_, i) => (i === 14 ? "SIGRTMAX" : `SIGRTMAX-${14 - i}`)),
];
/** Signals whose default action does not end a process: accepted, nothing to do. */
const HARMLESS = [
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGWINCH",
];
// prettier-ignore
const ENDING = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
  "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
  "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR", "SIGSYS", ...RT];
/** Piston's signal names (globals.js); any other is refused with 4005. */
const SIGNALS = new Set([...ENDING, ...HARMLESS]);

export interface PistonSocketDeps {
  service: ExecutionFrontend;
  registry: RuntimeRegistry;
  config: Config;
  analyzer: Analyzer | null;
}

type Message = Record<string, unknown>;

export class PistonConnection {
  private started = false;
  private closed = false;
  private execution: Execution | null = null;
  private pendingKill: string | null = null;
  private ran = false;
  private stdinBytes = 0;
  private readonly stdin = new PassThrough();
  private readonly gone = new AbortController();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly schema;

  constructor(
    private readonly socket: WebSocket,
    private readonly actor: RunActor,
    private readonly deps: PistonSocketDeps,
  ) {
    this.schema = createExecutionSchemas(deps.config).CreateExecutionSchema;
  }

  start(): void {
    this.socket.on("close", () => this.end());
    this.socket.on("error", () => this.socket.terminate());
    if (!this.deps.service.interactive)
      return this.fail(
        "interactive runs need a node that runs sandboxes (a single node): this cluster node queues runs through PostgreSQL, which carries no stdin stream",
        CLOSE.needsSandboxes,
      );
    this.socket.on("message", (data: Buffer) => this.onMessage(data));
    this.timers.push(
      setTimeout(() => {
        if (!this.started) this.close(CLOSE.initTimeout);
      }, INIT_TIMEOUT_MS),
    );
  }

  private send(message: Message): void {
    if (!this.closed) this.socket.send(JSON.stringify(message));
  }

  private onMessage(data: Buffer): void {
    if (this.closed) return;
    let msg: unknown;
    try {
      const text = data.toString("utf8");
      const { maxJsonDepth, maxJsonKeys } = this.deps.config.server.connections;
      checkJsonBounds(text, { maxDepth: maxJsonDepth, maxKeys: maxJsonKeys });
      msg = JSON.parse(text);
    } catch (error) {
      return this.fail(`message: not valid JSON (${(error as Error).message})`);
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg))
      return this.fail("message: must be a JSON object with a type");
    const m = msg as Message;
    if (m.type === "init") {
      if (this.started) return this.close(CLOSE.alreadyInitialized);
      this.started = true;
      void this.init(m);
      return;
    }
    if (m.type !== "data" && m.type !== "signal")
      return this.fail("type: must be init, data or signal");
    if (!this.started) return this.close(CLOSE.notInitialized);
    // Every message after init costs at least a byte of the stdin budget: a
    // flood of empty ones ends like a flood of bytes.
    const bytes = m.type === "data" && typeof m.data === "string" ? Buffer.byteLength(m.data) : 0;
    this.stdinBytes += Math.max(1, bytes);
    const max = this.deps.config.maxStdinBytes;
    if (this.stdinBytes > max)
      return this.fail(`stdin: more than ${max} bytes in total (maxStdinBytes)`);
    if (m.type === "data") {
      if (m.stream !== "stdin") return this.close(CLOSE.stdinOnly);
      if (typeof m.data !== "string") return this.fail("data: must be a string");
      if (!this.stdin.destroyed) this.stdin.write(m.data);
      return;
    }
    if (typeof m.signal !== "string" || !SIGNALS.has(m.signal))
      return this.close(CLOSE.invalidSignal);
    // The sandbox is ended as a whole (SIGKILL to its cgroup): a signal cannot
    // reach one process inside, and one that would not end it changes nothing.
    if (!ENDING.includes(m.signal)) return;
    this.kill(`signal ${m.signal} from the client`);
  }

  private kill(reason: string): void {
    if (!this.execution) this.pendingKill ??= reason;
    else if (!this.execution.result)
      void this.deps.service.killExecution(this.execution.id, reason);
  }

  /** The `init` message as Warden's execution input, with the REST route's checks and words. */
  private async readInit(m: Message): Promise<{ input: CreateExecutionInput; runtime: Message }> {
    const { language, version, files } = m;
    if (typeof language !== "string" || !language)
      throw new PistonRequestError("language is required as a string");
    if (version !== undefined && (typeof version !== "string" || !version))
      throw new PistonRequestError("version is required as a string");
    if (!Array.isArray(files)) throw new PistonRequestError("files is required as an array");
    const { service, registry, config } = this.deps;
    const def = registry.lookup(language);
    const runtime =
      def && (await pistonRuntimes(service, registry)).find((r) => r.language === def.language);
    if (!def || !runtime || !versionMatches(version ?? "*", runtime.version))
      throw new PistonRequestError(`${language}-${version ?? "*"} runtime is unknown`);
    // stdin goes to the stream (below), without the newline Piston adds to a whole stdin.
    const input = {
      ...pistonInput({ ...m, stdin: undefined }, files, def, config),
      stdin: undefined,
    };
    const checked = this.schema.safeParse({ ...input, retryOnFailure: false });
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      const where = issue.path.join(".");
      throw new PistonRequestError(
        issue.message.startsWith(where) ? issue.message : `${where}: ${issue.message}`,
      );
    }
    return {
      input: checked.data,
      runtime: { type: "runtime", language: runtime.language, version: runtime.version },
    };
  }

  private async init(m: Message): Promise<void> {
    try {
      const { input, runtime } = await this.readInit(m);
      if (typeof m.stdin === "string" && m.stdin) {
        this.stdinBytes += Buffer.byteLength(m.stdin);
        if (this.stdinBytes > this.deps.config.maxStdinBytes)
          throw new PistonRequestError(
            `stdin: more than ${this.deps.config.maxStdinBytes} bytes in total (maxStdinBytes)`,
          );
        this.stdin.write(m.stdin);
      }
      if (this.closed) return;
      this.send(runtime);
      const outcome = await runCode(this.deps, input, this.actor, {
        source: "piston",
        signal: this.gone.signal,
        abortReason: "client closed the socket",
        live: { stdin: this.stdin },
      });
      if (outcome.rejected) return this.fail(outcome.rejected.error!.message);
      this.follow(outcome.execution);
    } catch (error) {
      this.fail(error instanceof PistonRequestError ? error.message : toWardenError(error).message);
    }
  }

  private follow(execution: Execution): void {
    this.execution = execution;
    if (this.pendingKill) this.kill(this.pendingKill);
    execution.on("stage", (e) => this.onStage(e));
    execution.on("output", (chunk) => this.onOutput(chunk));
    if (execution.result) this.onEnd(execution.result);
    else void execution.done.then((result) => this.onEnd(result));
  }

  private onStage(e: StageEvent): void {
    if (e.phase === "start") {
      if (e.stage === "run") this.ran = true;
      return this.send({ type: "stage", stage: e.stage });
    }
    // The compile step's output arrives whole, when it ends.
    for (const stream of ["stdout", "stderr"] as const)
      if (e.result[stream]) this.send({ type: "data", stream, data: e.result[stream] });
    this.send(exit("compile", e.result));
  }

  private onOutput(chunk: OutputChunk): void {
    if (this.closed) return;
    if (this.socket.bufferedAmount > MAX_UNSENT_BYTES) {
      this.kill("client is not reading its output");
      this.socket.terminate();
      return this.end();
    }
    this.send({ type: "data", stream: chunk.stream, data: chunk.data });
  }

  private onEnd(result: ExecutionResult): void {
    if (this.closed) return;
    if (this.ran) {
      // queued, running and rejected are not a run's end: never seen here, "error" if they were.
      const status = RunStatusSchema.safeParse(result.status).data ?? "error";
      this.send(exit("run", { ...result, status }));
      return this.close(CLOSE.completed);
    }
    if (result.compile) return this.close(CLOSE.completed);
    this.fail(result.error?.message ?? `the run ended ${result.status} before it started`);
  }

  /** Piston's way to report a fatal error: an `error` message, then 4002. */
  private fail(text: string, code: readonly [number, string] = CLOSE.notified): void {
    this.send({ type: "error", message: text });
    this.close(code);
  }

  private close([code, reason]: readonly [number, string]): void {
    if (this.closed) return;
    this.socket.close(code, reason);
    this.end();
    // A client that never answers the close frame (or reads nothing) is cut off.
    const cut = setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS);
    this.socket.once("close", () => clearTimeout(cut));
  }

  /** The socket is done with: the run is killed if it still goes, and stdin freed. */
  private end(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.gone.abort();
    if (this.execution === null) this.pendingKill ??= "client closed the socket";
    this.stdin.destroy();
  }
}

/** Piston's `exit` message for a step, with its status letter and message as in /execute. */
function exit(stage: "compile" | "run", step: StepResult): Message {
  const status = letter(step);
  const killed = status === "TO" || status === "OL" || status === "EL" || step.status === "killed";
  return {
    type: "exit",
    stage,
    code: step.exitCode,
    signal: step.signal ?? (killed ? "SIGKILL" : null),
    status,
    message: message(step),
  };
}
