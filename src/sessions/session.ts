/**
 * One live session: its sandbox and agent, its background commands, its
 * clocks; and what can be done in it — commands, cells, files, ports. The
 * manager decides who may use it and when it ends; this is what it does.
 */
import type { Socket } from "node:net";
import { collectFailed, type ArtifactCandidate, type Collected } from "../artifacts/collect.js";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import { resolveLimits } from "../executions/limits.js";
import { EGRESS_PORT } from "../sandbox/box.js";
import { checkWorkspacePath } from "../sandbox/workspace.js";
import type { OutputChunk } from "../sandbox/types.js";
import { ArtifactPieces, FileBytes, Listing, RichResults } from "./agent-answers.js";
import type { EventOf } from "./agent-protocol.js";
import type { AgentEvent, AgentRequest, AgentSandbox } from "./agent-sandbox.js";
import { BackgroundCommands } from "./commands.js";
import { CodeContexts, defaultContextOf, type CodeContextInfo } from "./contexts.js";
import { callStatus } from "./outcome.js";
import { OutputTally } from "./output-cap.js";
import { PauseState } from "./pausing.js";
import type { ContextLanguage } from "../contract/session.js";
import type {
  CellResult,
  CommandOptions,
  CommandResult,
  FileEntry,
  RunCellOptions,
  SessionHooks,
  SessionInfo,
} from "./types.js";

/**
 * How long past a call's timeout the host waits for the agent's answer. The
 * agent stops a command at once and a cell within 2 s (SIGINT, then SIGKILL);
 * an agent that has not answered by then is not keeping the limit.
 */
const OVERDUE_GRACE_MS = 5_000;

/** A fresh empty collection (callers may add to its lists). */
const nothingCollected = (): Collected => ({ artifacts: [], rejected: [] });

/** File times and Warden's clock may disagree by a little: look a bit before the call began. */
const COLLECT_SLACK_MS = 10;

/**
 * Gathers a request's streamed output, up to the output limit per stream as
 * counted here on the host, while passing each kept piece on.
 */
function gather(
  outputBytes: number,
  onOutput?: (chunk: OutputChunk) => void,
): {
  out: { stdout: string; stderr: string };
  tally: OutputTally;
  onEvent: (event: AgentEvent) => void;
} {
  const out = { stdout: "", stderr: "" };
  const tally = new OutputTally(outputBytes);
  return {
    out,
    tally,
    onEvent: (event) => {
      if (event.type !== "stdout" && event.type !== "stderr") return;
      const stream = event.type;
      const data = tally.take(stream, event.data);
      if (!data) return;
      out[stream] += data;
      onOutput?.({ stream, data });
    },
  };
}

/**
 * What the agent's `stat` says of a path: its lstat (null when missing);
 * `inside` when the directory holding it resolves under /workspace; `real`
 * the workspace path it resolves to (null: missing, dangling or outside).
 * The agent's word, checked for shape only: it is the sandbox's own view.
 */
export type PathStat = Omit<EventOf<"stat">, "id" | "type">;

export class LiveSession {
  readonly background: BackgroundCommands;
  /** The cell running now and those queued behind it. */
  private cells: Promise<unknown> = Promise.resolve();
  expiresAt: number;
  lastUsedAt: number;
  /** Paused or not, and since when (see pausing.ts). */
  readonly pause = new PauseState();
  /** File watches open on it (sessions.maxWatches). */
  watches = 0;
  /** Its code contexts: the defaults and named ones (sessions.maxContexts). */
  readonly contexts: CodeContexts;

  constructor(
    readonly info: SessionInfo,
    readonly sandbox: AgentSandbox,
    readonly release: () => void,
    readonly idleMs: number,
    ttlMs: number,
    private readonly config: Config,
    private readonly hooks: SessionHooks,
  ) {
    // limits.outputBytes as the session was created with (the config's default otherwise).
    this.background = new BackgroundCommands(sandbox, sandbox.outputBytes);
    this.contexts = new CodeContexts(config.sessions.maxContexts);
    this.lastUsedAt = Date.now();
    this.expiresAt = this.lastUsedAt + ttlMs;
  }

  /**
   * The artifacts a call left: files under /workspace/output changed since it
   * began, read by the agent inside (the session is alive: the host reads nothing).
   */
  async collect(since: number): Promise<Collected> {
    const artifacts = this.hooks.artifacts;
    if (!artifacts || this.config.maxArtifactsPerExecution === 0 || this.sandbox.result)
      return nothingCollected();
    const limits = artifacts.limits();
    const pieces = new ArtifactPieces(limits);
    await this.sandbox.request(
      {
        op: "collect",
        since: since - COLLECT_SLACK_MS,
        maxBytes: limits.maxBytes,
        maxCount: limits.maxCount,
        maxTotal: limits.maxTotalBytes,
      },
      pieces.onEvent,
    );
    const files: ArtifactCandidate[] = pieces.candidates();
    if (files.length === 0) return nothingCollected();
    const id = this.info.id;
    return artifacts.keep(files, { ownerId: id, userId: this.info.userId });
  }

  /** The call's artifacts; a failure to collect them is reported, never loses the call's result. */
  private async collectSafely(since: number): Promise<Collected> {
    try {
      return await this.collect(since);
    } catch (error) {
      return collectFailed(error);
    }
  }

  /**
   * A request to the agent that `signal` can stop (the agent kills or
   * interrupts it), under a deadline the host keeps itself: the agent's own
   * timer is on the sandbox's side, where code in the session can stop it.
   * Past `deadlineMs` the call is cancelled and answered as overdue (null),
   * whatever the agent does.
   */
  private async cancellable(
    signal: AbortSignal | undefined,
    body: AgentRequest,
    onEvent: (event: AgentEvent) => void,
    deadlineMs: number,
  ): Promise<AgentEvent | null> {
    const { id, done } = this.sandbox.send(body, onEvent);
    const cancel = (): void => {
      this.sandbox.request({ op: "cancel", target: id }).catch(() => undefined);
    };
    let overdue = false;
    const timer = setTimeout(() => {
      overdue = true;
      cancel();
      this.sandbox.abandon(id, new WardenError("INTERNAL", "overdue"));
    }, deadlineMs);
    if (signal?.aborted) cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      return await done;
    } catch (error) {
      if (overdue) return null;
      throw error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", cancel);
    }
  }

  /**
   * Whether the kernel OOM-killed in the session's cgroup since `before` was
   * read. Asked only of calls that failed: the count matters to no other.
   */
  private async oomRose(before: Promise<number>): Promise<boolean> {
    const [was, now] = await Promise.all([before, this.sandbox.oomKills()]);
    return now > was;
  }

  async command(o: CommandOptions): Promise<CommandResult> {
    const started = Date.now();
    const { timeoutMs } = resolveLimits(this.config, { timeout: o.timeout });
    const outputBytes = this.sandbox.outputBytes;
    const { out, tally, onEvent } = gather(outputBytes, o.onOutput);
    // Read while the call starts, not before it: a call's own OOM comes much later.
    const oomBefore = this.sandbox.oomKills().catch(() => 0);
    const exit = (await this.cancellable(
      o.signal,
      {
        op: "exec",
        ...(typeof o.command === "string" ? { shell: o.command } : { argv: o.command }),
        cwd: o.cwd,
        env: o.env,
        stdin: o.stdin,
        timeoutMs,
        outputBytes,
      },
      onEvent,
      timeoutMs + OVERDUE_GRACE_MS,
    )) as EventOf<"exit"> | null;
    const exitCode = exit?.exitCode ?? null;
    const oomKilled = exitCode !== 0 && (await this.oomRose(oomBefore));
    // An agent that missed the call's deadline is not asked for anything more.
    const kept = exit ? await this.collectSafely(started) : nothingCollected();
    const signal = exit?.signal ?? null;
    const truncated = tally.settle(exit?.truncated ?? false);
    const status = callStatus({
      killed: o.signal?.aborted === true,
      timedOut: exit?.timedOut ?? true,
      truncated: truncated.stdout || truncated.stderr,
      oomKilled,
      ok: exitCode === 0,
    });
    return {
      status,
      success: status === "completed",
      exitCode,
      signal,
      ...out,
      truncated,
      durationMs: Date.now() - started,
      artifacts: kept.artifacts,
      rejectedArtifacts: kept.rejected,
    };
  }

  /**
   * Runs a cell in the session's persistent Python context: variables, imports
   * and the working directory carry over. A timeout interrupts the cell
   * (KeyboardInterrupt), not the session.
   */
  run(o: RunCellOptions & { language: ContextLanguage }): Promise<CellResult> {
    // Cells run one at a time (the agent queues them too): waiting here, not in
    // the agent, starts each cell's deadline when the cell starts.
    const turn = this.cells.then(() => this.runNow(o));
    this.cells = turn.catch(() => undefined);
    return turn;
  }

  private async runNow(o: RunCellOptions & { language: ContextLanguage }): Promise<CellResult> {
    // A named context runs its own language; NOT_FOUND if it was closed meanwhile.
    const context = o.context ? this.contexts.get(o.context) : null;
    const language = context?.named ? context.language : o.language;
    const executionCount = this.contexts.executed(context?.id ?? defaultContextOf(language));
    o.onStart?.(executionCount);
    const { timeoutMs } = resolveLimits(this.config, { timeout: o.timeout });
    const outputBytes = this.sandbox.outputBytes;
    const { out, tally, onEvent } = gather(outputBytes, o.onOutput);
    const results = new RichResults();
    const started = Date.now();
    const oomBefore = this.sandbox.oomKills().catch(() => 0);
    const cell = (await this.cancellable(
      o.signal,
      {
        op: "run",
        language,
        code: o.code,
        timeoutMs,
        outputBytes,
        ...(context?.named ? { context: context.id } : {}),
        ...(o.env ? { env: o.env } : {}),
      },
      (event) => {
        if (event.type === "result" || event.type === "mime") results.onEvent(event);
        else onEvent(event);
      },
      timeoutMs + OVERDUE_GRACE_MS,
    )) as EventOf<"cell"> | null;
    const oomKilled = (cell === null || cell.error !== null) && (await this.oomRose(oomBefore));
    const kept = cell ? await this.collectSafely(started) : nothingCollected();
    let error = cell
      ? cell.error
      : {
          name: "TimeoutError",
          value: `the cell did not stop at its ${timeoutMs} ms limit; Warden stopped waiting for it`,
          traceback: "",
        };
    const truncated = tally.settle(cell?.truncated ?? false);
    const status = callStatus({
      killed: o.signal?.aborted === true,
      timedOut: cell?.timedOut ?? true,
      truncated: truncated.stdout || truncated.stderr,
      oomKilled,
      ok: error === null,
    });
    // The status is the cgroup's word; when the context itself is gone, the error says why.
    if (status === "memory_limit" && error?.name === "KernelDied")
      error = {
        name: "MemoryLimit",
        value: `the ${language} context was killed at the session's memory limit (${this.info.limits.memoryMb} MB); its state is lost`,
        traceback: "",
      };
    return {
      status,
      success: status === "completed",
      ...out,
      truncated,
      results: results.list(),
      error,
      durationMs: Date.now() - started,
      artifacts: kept.artifacts,
      rejectedArtifacts: kept.rejected,
    };
  }

  /** A named code context with its own kernel, started in `cwd` (relative to /workspace). */
  async createContext(language: ContextLanguage, cwd: string): Promise<CodeContextInfo> {
    const info = this.contexts.reserve(
      language,
      cwd === "." ? "." : checkWorkspacePath(cwd, "cwd"),
    );
    try {
      await this.sandbox.request({
        op: "context-create",
        context: info.id,
        language,
        cwd: info.cwd,
      });
    } catch (error) {
      this.contexts.remove(info.id);
      throw error;
    }
    return info;
  }

  /** Kills a context's kernel (its variables are gone); the next cell starts a fresh one. */
  async restartContext(id: string): Promise<void> {
    const info = this.contexts.get(id);
    await this.sandbox.request({ op: "context-restart", context: info.id });
    this.contexts.reset(info.id);
  }

  /** Ends a named context (a default one is restarted: it is always there). */
  async closeContext(id: string): Promise<void> {
    const info = this.contexts.get(id);
    await this.sandbox.request({
      op: info.named ? "context-close" : "context-restart",
      context: info.id,
    });
    this.contexts.remove(info.id);
  }

  async writeFile(path: string, content: Buffer): Promise<void> {
    if (content.length > this.config.maxFileBytes)
      throw new WardenError(
        "INVALID_REQUEST",
        `body: at most ${this.config.maxFileBytes} bytes per file (maxFileBytes)`,
      );
    await this.sandbox.request({
      op: "write",
      path: checkWorkspacePath(path),
      content: content.toString("base64"),
    });
  }

  async readFile(path: string): Promise<Buffer> {
    // The bytes are counted as they arrive; the size the agent reports is not used.
    const file = new FileBytes(this.config.maxFileBytes);
    await this.sandbox.request(
      { op: "read", path: checkWorkspacePath(path), maxBytes: this.config.maxFileBytes },
      file.onEvent,
    );
    return file.content();
  }

  async listFiles(dir: string): Promise<FileEntry[]> {
    const path = dir === "" || dir === "." ? "." : checkWorkspacePath(dir, "dir");
    const listing = new Listing();
    await this.sandbox.request({ op: "list", path }, listing.onEvent);
    return listing.entries;
  }

  async deleteFile(path: string): Promise<void> {
    await this.sandbox.request({ op: "delete", path: checkWorkspacePath(path) });
  }

  async makeDir(path: string): Promise<void> {
    await this.sandbox.request({ op: "mkdir", path: checkWorkspacePath(path) });
  }

  /** lstat of a path ("." is the workspace) and whether it stays inside the workspace. */
  async stat(path: string): Promise<PathStat> {
    const rel = path === "" || path === "." ? "." : checkWorkspacePath(path);
    const answer = (await this.sandbox.request({ op: "stat", path: rel })) as EventOf<"stat">;
    return { entry: answer.entry, inside: answer.inside, real: answer.real };
  }

  /** Renames `source` to `destination`, making the destination's directories. */
  async move(source: string, destination: string): Promise<void> {
    await this.sandbox.request({
      op: "move",
      path: checkWorkspacePath(source, "source"),
      destination: checkWorkspacePath(destination, "destination"),
    });
  }

  /**
   * A connection to a server listening on `port` inside the session (web
   * previews), for its owner only: an admin key does not open another user's.
   */
  async openPort(port: number): Promise<Socket> {
    // The egress bridge's port is Warden's own, not the session's.
    if (!Number.isInteger(port) || port < 1 || port > 65_535 || port === EGRESS_PORT)
      throw new WardenError("INVALID_REQUEST", `port: must be 1-65535 and not ${EGRESS_PORT}`);
    return this.sandbox.openPort(port);
  }
}
