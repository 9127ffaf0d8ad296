/**
 * Sessions: sandboxes that live across calls, each with session-wide limits,
 * a TTL and an idle timeout, owned by one user. Commands and file operations
 * run inside through the session's agent. Expiry, deletion and crashes all
 * end in the same place: the sandbox is destroyed and nothing is left.
 */
import type { Logger } from "../audit/logger.js";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import { resolveLimits, type RequestLimits } from "../executions/limits.js";
import type { SandboxHost } from "../sandbox/host.js";
import { checkWorkspacePath } from "../sandbox/workspace.js";
import type { Socket } from "node:net";
import type {
  ArtifactCandidate,
  ArtifactEntry,
  ArtifactLimits,
  Collected,
  RejectedArtifact,
} from "../artifacts/collect.js";
import type { EgressPolicy } from "../network/policy.js";
import type { OutputChunk, SandboxNetwork } from "../sandbox/types.js";
import { ulid } from "../util/ids.js";
import { AgentSandbox, text, type AgentEvent } from "./agent-sandbox.js";
import {
  BackgroundCommands,
  type BackgroundEvent,
  type BackgroundInfo,
  type BackgroundStart,
  type CommandSignal,
} from "./commands.js";

export interface SessionInfo {
  id: string;
  userId: string;
  status: "running" | "ended";
  createdAt: string;
  expiresAt: string;
  lastUsedAt: string;
  idleTimeoutSeconds: number;
  /** Default language of `run` (the code context). */
  language: "python" | "javascript";
  /** Hosts the session may reach through the egress proxy; empty = no network. */
  network: string[];
  limits: { memoryMb: number; cpuPercent: number; diskMb: number; pids: number };
  metadata: Record<string, string>;
}

export interface CreateSessionOptions {
  language?: string | undefined;
  /** Egress for the whole session, already checked against the server's and key's policy. */
  network?: EgressPolicy | null | undefined;
  timeout?: number | undefined;
  idleTimeout?: number | undefined;
  limits?: RequestLimits | undefined;
  metadata?: Record<string, string> | undefined;
}

export interface CommandOptions {
  command: string[] | string;
  cwd?: string | undefined;
  env?: Record<string, string> | undefined;
  stdin?: string | undefined;
  timeout?: number | undefined;
  onOutput?: ((chunk: OutputChunk) => void) | undefined;
  /** Aborting stops the command (its whole process group); the session goes on. */
  signal?: AbortSignal | undefined;
}

export interface CommandResult {
  status: "completed" | "failed" | "timeout" | "output_limit";
  success: boolean;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  durationMs: number;
  artifacts: ArtifactEntry[];
  rejectedArtifacts: RejectedArtifact[];
}

export interface RunCellOptions {
  code: string;
  language?: string | undefined;
  timeout?: number | undefined;
  onOutput?: ((chunk: OutputChunk) => void) | undefined;
  /** Aborting interrupts the cell (KeyboardInterrupt); the context survives. */
  signal?: AbortSignal | undefined;
}

/** A rich output: a MIME bundle, e.g. {"text/plain": "42", "image/png": "<base64>"}. */
export interface RichResult {
  data: Record<string, string>;
  isMainResult: boolean;
}

export interface CellResult {
  status: "completed" | "failed" | "timeout";
  success: boolean;
  stdout: string;
  stderr: string;
  results: RichResult[];
  error: { name: string; value: string; traceback: string } | null;
  durationMs: number;
  artifacts: ArtifactEntry[];
  rejectedArtifacts: RejectedArtifact[];
}

export interface FileEntry {
  name: string;
  type: string;
  size: number;
  mtime: string | null;
}

/** What the manager needs from the rest of the service. */
export interface SessionHooks {
  audit(e: {
    userId: string;
    level: "info" | "warn";
    event: string;
    message: string;
    data?: Record<string, unknown>;
  }): void;
  /** Egress with per-connection audit and metrics. */
  egress?(policy: EgressPolicy, owner: { userId: string; sessionId: string }): SandboxNetwork;
  /** Holds a session's memory in the host's budget while it lives; returns the release. */
  reserveMemory?(mb: number, what: string): () => void;
  /** Judges and stores what a call left under /workspace/output (artifacts). */
  artifacts?: {
    limits(): ArtifactLimits;
    keep(
      candidates: ArtifactCandidate[],
      owner: { ownerId: string; userId: string },
      urlOf: (name: string) => string,
    ): Promise<Collected>;
  };
}

interface Session {
  info: SessionInfo;
  sandbox: AgentSandbox;
  background: BackgroundCommands;
  release: () => void;
  expiresAt: number;
  lastUsedAt: number;
  idleMs: number;
}

const SWEEP_MS = 1000;
/** File times and Warden's clock may disagree by a little: look a bit before the call began. */
const COLLECT_SLACK_MS = 10;

/** Loopback ports inside a session that are Warden's own (the egress bridge). */
const RESERVED_PORTS = new Set([3128]);

/** Languages with a persistent context, by name and alias. */
const CONTEXT_LANGUAGES: Record<string, "python" | "javascript"> = {
  python: "python",
  py: "python",
  python3: "python",
  javascript: "javascript",
  js: "javascript",
  node: "javascript",
};

/** Gathers a request's streamed output while passing each piece on. */
function gather(onOutput?: (chunk: OutputChunk) => void): {
  out: { stdout: string; stderr: string };
  onEvent: (event: AgentEvent) => void;
} {
  const out = { stdout: "", stderr: "" };
  return {
    out,
    onEvent: (event) => {
      const stream = event.type as "stdout" | "stderr";
      const data = text(event.data);
      out[stream] += data;
      onOutput?.({ stream, data });
    },
  };
}

export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly config: Config,
    private readonly host: SandboxHost,
    private readonly logger: Logger,
    private readonly hooks: SessionHooks,
  ) {
    this.sweeper = setInterval(() => void this.expire(), SWEEP_MS);
    this.sweeper.unref();
  }

  get count(): number {
    return this.sessions.size;
  }

  private ownedBy(id: string, userId: string, admin = false): Session {
    const session = this.sessions.get(id);
    if (!session || (!admin && session.info.userId !== userId))
      throw new WardenError("NOT_FOUND", `session ${id} not found`);
    return session;
  }

  /** The context language a name or alias stands for, or UNSUPPORTED_LANGUAGE. */
  private contextLanguage(name: string, field: string): "python" | "javascript" {
    const language = CONTEXT_LANGUAGES[name.toLowerCase()];
    if (!language)
      throw new WardenError(
        "UNSUPPORTED_LANGUAGE",
        `${field}: code contexts exist for python and javascript (got ${name})`,
      );
    return language;
  }

  async create(userId: string, options: CreateSessionOptions = {}): Promise<SessionInfo> {
    if (this.sessions.size >= this.config.maxSessions)
      throw new WardenError(
        "SANDBOX_BUSY",
        `sessions: this host holds its maximum of ${this.config.maxSessions} (maxSessions)`,
        { details: { reason: "max_sessions", retryAfterSeconds: 30 } },
      );
    const language = this.contextLanguage(options.language ?? "python", "language");
    const mine = [...this.sessions.values()].filter((s) => s.info.userId === userId).length;
    if (mine >= this.config.maxSessionsPerUser)
      throw new WardenError(
        "QUOTA_EXCEEDED",
        `sessions: you already hold ${mine} (maxSessionsPerUser ${this.config.maxSessionsPerUser})`,
      );
    const ttl = options.timeout ?? this.config.sessionTimeout;
    if (ttl > this.config.maxSessionTimeout)
      throw new WardenError(
        "INVALID_REQUEST",
        `timeout: ${ttl} exceeds the maximum ${this.config.maxSessionTimeout} (maxSessionTimeout)`,
      );
    const idle = options.idleTimeout ?? this.config.sessionIdleTimeout;
    // The sandbox's own wall limit is the TTL (plus slack): the manager ends it first.
    const limits = {
      ...resolveLimits(this.config, { limits: options.limits }),
      timeoutMs: (ttl + 60) * 1000,
    };
    const id = `sess_${ulid()}`;
    const release = this.hooks.reserveMemory?.(limits.memoryMb, "limits.memoryMb") ?? (() => {});
    let sandbox: AgentSandbox;
    try {
      sandbox = await this.startSandbox(id, userId, limits, options.network);
    } catch (error) {
      release();
      throw error;
    }
    const now = Date.now();

    const info: SessionInfo = {
      id,
      userId,
      status: "running",
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + ttl * 1000).toISOString(),
      lastUsedAt: new Date(now).toISOString(),
      idleTimeoutSeconds: idle,
      language,
      network: options.network?.allow ?? [],
      limits: {
        memoryMb: limits.memoryMb,
        cpuPercent: limits.cpuPercent,
        diskMb: limits.diskMb,
        pids: limits.pids,
      },
      metadata: options.metadata ?? {},
    };
    this.sessions.set(id, {
      info,
      sandbox,
      background: new BackgroundCommands(sandbox, this.config.defaults.outputBytes),
      release,
      expiresAt: now + ttl * 1000,
      lastUsedAt: now,
      idleMs: idle * 1000,
    });
    this.hooks.audit({
      userId,
      level: "info",
      event: "session_created",
      message: `session ${id} created`,
      data: { sessionId: id, ttl },
    });
    return { ...info };
  }

  private startSandbox(
    id: string,
    userId: string,
    limits: ReturnType<typeof resolveLimits>,
    network: EgressPolicy | null | undefined,
  ): Promise<AgentSandbox> {
    return AgentSandbox.start(this.host, limits.diskMb, {
      limits,
      searchPath: this.config.sandbox.searchPath,
      network:
        network && this.hooks.egress
          ? this.hooks.egress(network, { userId, sessionId: id })
          : undefined,
      onExit: (result) => {
        if (!this.sessions.has(id)) return;
        this.logger.warn(
          { sessionId: id, status: result.status },
          "session sandbox ended on its own",
        );
        void this.destroy(id, userId, `sandbox ended: ${result.status}`, true);
      },
    });
  }

  get(id: string, userId: string, admin = false): SessionInfo {
    const s = this.ownedBy(id, userId, admin);
    return {
      ...s.info,
      lastUsedAt: new Date(s.lastUsedAt).toISOString(),
      expiresAt: new Date(s.expiresAt).toISOString(),
    };
  }

  list(userId: string, admin = false): SessionInfo[] {
    return [...this.sessions.values()]
      .filter((s) => admin || s.info.userId === userId)
      .map((s) => this.get(s.info.id, s.info.userId, true));
  }

  /** Every live session with its memory and CPU now (the admin's view). */
  async monitor(): Promise<(SessionInfo & { memoryBytes: number; cpuTimeMs: number })[]> {
    return Promise.all(
      [...this.sessions.values()].map(async (s) => ({
        ...this.get(s.info.id, s.info.userId, true),
        ...(await s.sandbox.usage()),
      })),
    );
  }

  extend(id: string, userId: string, seconds: number): SessionInfo {
    const s = this.ownedBy(id, userId);
    const created = Date.parse(s.info.createdAt);
    const wanted = Date.now() + seconds * 1000;
    if (wanted - created > this.config.maxSessionTimeout * 1000)
      throw new WardenError(
        "INVALID_REQUEST",
        `timeout: a session lives at most ${this.config.maxSessionTimeout} s (maxSessionTimeout)`,
      );
    s.expiresAt = Math.max(s.expiresAt, wanted);
    return this.get(id, userId);
  }

  private touch(s: Session): void {
    s.lastUsedAt = Date.now();
  }

  async destroy(id: string, userId: string, reason: string, admin = false): Promise<void> {
    const s = this.ownedBy(id, userId, admin);
    this.sessions.delete(id);
    try {
      await s.sandbox.close();
    } finally {
      s.release();
    }
    this.hooks.audit({
      userId: s.info.userId,
      level: "info",
      event: "session_ended",
      message: `session ${id} ended: ${reason}`,
      data: { sessionId: id },
    });
  }

  private async expire(): Promise<void> {
    const now = Date.now();
    for (const s of [...this.sessions.values()]) {
      const why =
        now >= s.expiresAt
          ? "TTL reached"
          : s.sandbox.inFlight === 0 && now - s.lastUsedAt >= s.idleMs
            ? "idle timeout"
            : null;
      if (why) await this.destroy(s.info.id, s.info.userId, why, true).catch(() => undefined);
    }
  }

  /** A request's timeout in ms, refused above the maximum. */
  private timeoutMs(seconds: number | undefined): number {
    const ms = Math.round((seconds ?? this.config.defaultTimeout) * 1000);
    if (ms > this.config.maxTimeout * 1000)
      throw new WardenError(
        "INVALID_REQUEST",
        `timeout: ${seconds} exceeds the maximum ${this.config.maxTimeout} (maxTimeout)`,
      );
    return ms;
  }

  /**
   * The artifacts a call left: files under /workspace/output changed since it
   * began, read by the agent inside (the session is alive: the host reads nothing).
   */
  private async collect(s: Session, since: number): Promise<Collected> {
    const artifacts = this.hooks.artifacts;
    if (!artifacts || this.config.maxArtifactsPerExecution === 0 || s.sandbox.result)
      return { artifacts: [], rejected: [] };
    const limits = artifacts.limits();
    const found = await s.sandbox.request({
      op: "collect",
      since: since - COLLECT_SLACK_MS,
      maxBytes: limits.maxBytes,
      maxCount: limits.maxCount,
      maxTotal: limits.maxTotalBytes,
    });
    const files = (found.files ?? []) as (Omit<ArtifactCandidate, "content"> & {
      content?: string;
    })[];
    if (files.length === 0) return { artifacts: [], rejected: [] };
    const id = s.info.id;
    return artifacts.keep(
      files.map((f) => ({
        ...f,
        content: f.content ? Buffer.from(f.content, "base64") : undefined,
      })),
      { ownerId: id, userId: s.info.userId },
      (name) => `/v1/sessions/${id}/artifacts/${encodeURI(name)}`,
    );
  }

  /** A request to the agent that `signal` can stop (the agent kills or interrupts it). */
  private async cancellable(
    s: Session,
    signal: AbortSignal | undefined,
    body: Record<string, unknown>,
    onEvent: (event: AgentEvent) => void,
  ): Promise<AgentEvent> {
    const { id, done } = s.sandbox.send(body, onEvent);
    const cancel = (): void => {
      s.sandbox.request({ op: "cancel", target: id }).catch(() => undefined);
    };
    if (signal?.aborted) cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      return await done;
    } finally {
      signal?.removeEventListener("abort", cancel);
    }
  }

  async command(id: string, userId: string, o: CommandOptions): Promise<CommandResult> {
    const s = this.ownedBy(id, userId);
    this.touch(s);
    const started = Date.now();
    const timeoutMs = this.timeoutMs(o.timeout);
    const { out, onEvent } = gather(o.onOutput);
    const exit = await this.cancellable(
      s,
      o.signal,
      {
        op: "exec",
        ...(typeof o.command === "string" ? { shell: o.command } : { argv: o.command }),
        cwd: o.cwd,
        env: o.env,
        stdin: o.stdin,
        timeoutMs,
        outputBytes: this.config.defaults.outputBytes,
      },
      onEvent,
    );
    this.touch(s);
    const kept = await this.collect(s, started);
    const exitCode = typeof exit.exitCode === "number" ? exit.exitCode : null;
    const signal = typeof exit.signal === "string" ? exit.signal : null;
    const status = exit.timedOut
      ? "timeout"
      : exit.truncated
        ? "output_limit"
        : exitCode === 0
          ? "completed"
          : "failed";
    return {
      status,
      success: status === "completed",
      exitCode,
      signal,
      ...out,
      truncated: exit.truncated === true,
      durationMs: Number(exit.durationMs ?? 0),
      artifacts: kept.artifacts,
      rejectedArtifacts: kept.rejected,
    };
  }

  /** Starts a command that outlives the request (a server, a watcher). */
  startBackground(id: string, userId: string, o: BackgroundStart): BackgroundInfo {
    const s = this.ownedBy(id, userId);
    this.touch(s);
    return s.background.start(o);
  }

  listBackground(id: string, userId: string): BackgroundInfo[] {
    return this.ownedBy(id, userId).background.list();
  }

  getBackground(id: string, userId: string, commandId: string) {
    return this.ownedBy(id, userId).background.get(commandId);
  }

  /** Output so far, then live, until the command exits; returns the unsubscribe. */
  followBackground(
    id: string,
    userId: string,
    commandId: string,
    listener: (event: BackgroundEvent) => void,
  ): () => void {
    return this.ownedBy(id, userId).background.follow(commandId, listener);
  }

  async stdinBackground(
    id: string,
    userId: string,
    commandId: string,
    data: string,
    eof: boolean,
  ): Promise<void> {
    const s = this.ownedBy(id, userId);
    this.touch(s);
    await s.background.stdin(commandId, data, eof);
  }

  async signalBackground(
    id: string,
    userId: string,
    commandId: string,
    signal: CommandSignal,
  ): Promise<void> {
    const s = this.ownedBy(id, userId);
    this.touch(s);
    await s.background.signal(commandId, signal);
  }

  /**
   * Runs a cell in the session's persistent Python context: variables, imports
   * and the working directory carry over. A timeout interrupts the cell
   * (KeyboardInterrupt), not the session.
   */
  async run(id: string, userId: string, o: RunCellOptions): Promise<CellResult> {
    const s = this.ownedBy(id, userId);
    this.touch(s);
    const language = o.language ? this.contextLanguage(o.language, "language") : s.info.language;
    const timeoutMs = this.timeoutMs(o.timeout);
    const { out, onEvent } = gather(o.onOutput);
    const started = Date.now();
    const cell = await this.cancellable(
      s,
      o.signal,
      { op: "run", language, code: o.code, timeoutMs },
      onEvent,
    );
    this.touch(s);
    const kept = await this.collect(s, started);
    const error = (cell.error as CellResult["error"]) ?? null;
    const status = cell.timedOut ? "timeout" : error ? "failed" : "completed";
    return {
      status,
      success: status === "completed",
      ...out,
      results: (cell.results as CellResult["results"]) ?? [],
      error,
      durationMs: Number(cell.durationMs ?? 0),
      artifacts: kept.artifacts,
      rejectedArtifacts: kept.rejected,
    };
  }

  async writeFile(id: string, userId: string, path: string, content: Buffer): Promise<void> {
    const s = this.ownedBy(id, userId);
    this.touch(s);
    if (content.length > this.config.maxFileBytes)
      throw new WardenError(
        "INVALID_REQUEST",
        `body: at most ${this.config.maxFileBytes} bytes per file (maxFileBytes)`,
      );
    await s.sandbox.request({
      op: "write",
      path: checkWorkspacePath(path),
      content: content.toString("base64"),
    });
  }

  async readFile(id: string, userId: string, path: string): Promise<Buffer> {
    const s = this.ownedBy(id, userId);
    this.touch(s);
    const file = await s.sandbox.request({
      op: "read",
      path: checkWorkspacePath(path),
      maxBytes: this.config.maxFileBytes,
    });
    return Buffer.from(text(file.content), "base64");
  }

  async listFiles(id: string, userId: string, dir: string): Promise<FileEntry[]> {
    const s = this.ownedBy(id, userId);
    this.touch(s);
    const path = dir === "" || dir === "." ? "." : checkWorkspacePath(dir, "dir");
    return (await s.sandbox.request({ op: "list", path })).entries as FileEntry[];
  }

  async deleteFile(id: string, userId: string, path: string): Promise<void> {
    const s = this.ownedBy(id, userId);
    this.touch(s);
    await s.sandbox.request({ op: "delete", path: checkWorkspacePath(path) });
  }

  async makeDir(id: string, userId: string, path: string): Promise<void> {
    const s = this.ownedBy(id, userId);
    this.touch(s);
    await s.sandbox.request({ op: "mkdir", path: checkWorkspacePath(path) });
  }

  /**
   * A connection to a server listening on `port` inside the session (web
   * previews), for its owner only: an admin key does not open another user's.
   */
  async openPort(id: string, userId: string, port: number): Promise<Socket> {
    const s = this.ownedBy(id, userId);
    if (!Number.isInteger(port) || port < 1 || port > 65_535 || RESERVED_PORTS.has(port))
      throw new WardenError(
        "INVALID_REQUEST",
        `port: must be 1-65535 and not ${[...RESERVED_PORTS].join(", ")}`,
      );
    this.touch(s);
    return s.sandbox.openPort(port);
  }

  /** Ends every session (shutdown). */
  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all(
      [...this.sessions.keys()].map((id) =>
        this.destroy(id, "", "shutdown", true).catch(() => undefined),
      ),
    );
  }
}
