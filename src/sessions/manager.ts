/**
 * Sessions: sandboxes that live across calls, each with session-wide limits,
 * a TTL and an idle timeout, owned by one user. Commands and file operations
 * run inside through the session's agent. Expiry, deletion and crashes all
 * end in the same place: the sandbox is destroyed and nothing is left.
 */
import type { Isolation } from "../contract/isolation.js";
import { checkTierAvailable, resolveIsolation } from "../executions/isolation.js";
import type { Socket } from "node:net";
import type { Logger } from "../audit/logger.js";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import { resolveLimits } from "../executions/limits.js";
import type { EgressPolicy } from "../network/policy.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { SandboxEnvironment } from "../sandbox/types.js";
import { EnvironmentStore } from "../environments/store.js";
import { ulid } from "../util/ids.js";
import { AgentSandbox } from "./agent-sandbox.js";
import type {
  BackgroundEvent,
  BackgroundInfo,
  BackgroundStart,
  CommandSignal,
} from "./commands.js";
import type { ContextLanguage } from "../contract/session.js";
import { cellLanguage, contextLanguage } from "./languages.js";
import { LiveSession, type PathStat } from "./session.js";
import type { CodeContextInfo } from "./contexts.js";
import { Pausing } from "./pausing.js";
import { restoreInto, type SnapshotStore } from "./snapshots.js";
import { watchDirectory, type WatchEvent } from "./watch.js";
import type { SnapshotInfo } from "../contract/snapshot.js";
import type {
  CellResult,
  CommandOptions,
  CommandResult,
  CreateSessionOptions,
  FileEntry,
  RunCellOptions,
  SessionHooks,
  SessionInfo,
} from "./types.js";

export type * from "./types.js";

const SWEEP_MS = 1000;
/** The sandbox's wall limit over the longest session life: only if the sweeper failed. */
const WALL_SLACK_S = 60;
export class SessionManager {
  private readonly sessions = new Map<string, LiveSession>();
  /** Sessions being started, by user: counted against the limits like live ones. */
  private readonly starting = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;
  /** Prebuilt environments a session may name (docs/environments.md). */
  readonly environments: EnvironmentStore;
  private readonly pausing: Pausing;

  constructor(
    private readonly config: Config,
    private readonly host: SandboxHost,
    private readonly logger: Logger,
    private readonly hooks: SessionHooks,
  ) {
    this.sweeper = setInterval(() => void this.expire(), SWEEP_MS);
    this.sweeper.unref();
    this.environments = new EnvironmentStore(config.dataDir);
    this.pausing = new Pausing({
      config,
      snapshots: hooks.snapshots,
      sessions: () => this.sessions.values(),
      destroy: (s, reason) => this.destroy(s.info.id, s.info.userId, reason, true),
      audit: (userId, event, message, data) =>
        hooks.audit({ userId, level: "info", event, message, data }),
    });
  }

  get count(): number {
    return this.sessions.size;
  }

  private ownedBy(id: string, userId: string, admin = false): LiveSession {
    const session = this.sessions.get(id);
    if (!session || (!admin && session.info.userId !== userId))
      throw this.pausing.notFound(id, userId, admin);
    return session;
  }

  async create(
    userId: string,
    options: CreateSessionOptions = {},
    keyId: string | null = null,
  ): Promise<SessionInfo> {
    const startingNow = [...this.starting.values()].reduce((a, b) => a + b, 0);
    if (this.sessions.size + startingNow >= this.config.maxSessions)
      throw new WardenError(
        "SANDBOX_BUSY",
        `sessions: this host holds its maximum of ${this.config.maxSessions} (maxSessions)`,
        { details: { reason: "max_sessions", retryAfterSeconds: 30 } },
      );
    await this.hooks.quotas?.admit({ userId, keyId }, "session");
    if (options.snapshot !== undefined && !this.hooks.snapshots)
      throw new WardenError("INVALID_REQUEST", "snapshot: this Warden keeps no snapshots");
    const restore = options.snapshot
      ? this.hooks.snapshots?.archive(options.snapshot, userId)
      : undefined;
    const language = contextLanguage(options.language ?? restore?.info.language ?? "python");
    // Before anything starts: a forced key's namespaces request is refused (403), and a
    // gvisor session on a host without the tier is refused (503), never run in namespaces.
    const isolation = resolveIsolation(
      this.config.sandbox.isolation,
      options.isolation,
      options.keyIsolation,
    );
    checkTierAvailable(this.host, isolation);
    // A restored session keeps its snapshot's environment unless it names another.
    const environment = this.environments.resolve(
      options.environment ?? restore?.info.environment,
      "environment",
    );
    // Paused sessions run nothing: they count in maxSessions and maxPausedPerUser, not here
    // (one thawed while a snapshot of it is taken runs, and counts).
    const mine =
      [...this.sessions.values()].filter((s) => s.info.userId === userId && s.pause.running)
        .length + (this.starting.get(userId) ?? 0);
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
    // The session's end is its expiresAt, kept by the sweeper, which `extend` moves. The
    // sandbox's own wall limit is only the backstop: the longest life any session may
    // reach (maxSessionTimeout) plus slack, so that an extended session is never cut
    // short by a limit fixed at creation, and none outlives the server's maximum.
    const limits = {
      ...resolveLimits(this.config, { limits: options.limits }),
      // (Node's timers hold at most 2^31-1 ms, about 24.8 days; a longer one fires at once.)
      timeoutMs: Math.min((this.config.maxSessionTimeout + WALL_SLACK_S) * 1000, 2 ** 31 - 1),
    };
    const id = `sess_${ulid()}`;
    const releaseMemory =
      this.hooks.reserveMemory?.(limits.memoryMb, "limits.memoryMb") ?? (() => {});
    // A live session holds its environment: `warden env rm` refuses it meanwhile.
    let releaseEnvironment = async (): Promise<void> => undefined;
    const release = (): void => {
      releaseMemory();
      void releaseEnvironment();
    };
    let sandbox: AgentSandbox;
    // Counted from here, so that concurrent creates cannot all pass the limits above.
    this.starting.set(userId, (this.starting.get(userId) ?? 0) + 1);
    try {
      if (environment) releaseEnvironment = await this.environments.acquire(environment.name);
      sandbox = await this.startSandbox(
        id,
        userId,
        limits,
        options.network,
        environment,
        language,
        options.env,
        isolation,
      );
      const ready = async (): Promise<void> => {
        // Restored by the fresh agent, before any user code runs: code contexts start anew.
        if (restore)
          await restoreInto(sandbox, restore.path, this.config.sessions.maxSnapshotEntries);
        // Where artifacts come from exists from the start, as in a one-shot run.
        await sandbox.request({ op: "mkdir", path: "output" });
      };
      await ready().catch(async (error: unknown) => {
        await sandbox.close();
        throw error;
      });
    } catch (error) {
      release();
      throw error;
    } finally {
      const left = (this.starting.get(userId) ?? 1) - 1;
      if (left > 0) this.starting.set(userId, left);
      else this.starting.delete(userId);
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
      environment: environment?.name ?? "default",
      isolation,
      limits: {
        memoryMb: limits.memoryMb,
        cpuPercent: limits.cpuPercent,
        diskMb: limits.diskMb,
        pids: limits.pids,
      },
      metadata: options.metadata ?? {},
      state: "running",
      pausedAt: null,
      snapshotId: null,
    };
    this.sessions.set(
      id,
      new LiveSession(info, sandbox, release, idle * 1000, ttl * 1000, this.config, this.hooks),
    );
    await this.register(info, keyId, now);
    this.hooks.usage?.started({ id, userId, keyId, sandbox });
    this.hooks.audit({
      userId,
      level: "info",
      event: "session_created",
      message: `session ${id} created`,
      data: { sessionId: id, ttl, ...(restore ? { snapshotId: restore.info.id } : {}) },
    });
    return { ...info };
  }

  /** Cluster: a session API nodes cannot find is of no use, so a failed registration ends it. */
  private async register(info: SessionInfo, keyId: string | null, now: number): Promise<void> {
    const registry = this.hooks.registry;
    if (!registry) return;
    const row = {
      id: info.id,
      userId: info.userId,
      keyId,
      language: info.language,
      createdAt: now,
    };
    await registry
      .register({ ...row, workerId: registry.workerId })
      .catch(async (error: unknown) => {
        await this.destroy(info.id, info.userId, "registry unavailable", true).catch(
          () => undefined,
        );
        throw error;
      });
  }

  private startSandbox(
    id: string,
    userId: string,
    limits: ReturnType<typeof resolveLimits>,
    network: EgressPolicy | null | undefined,
    environment: SandboxEnvironment | null,
    language: ContextLanguage,
    env: Record<string, string> | undefined,
    isolation: Isolation,
  ): Promise<AgentSandbox> {
    return AgentSandbox.start(this.host, limits.diskMb, {
      limits,
      environment,
      env,
      indexes: this.config.environments,
      searchPath: this.config.sandbox.searchPath,
      pythonKernel: this.config.sessionPythonKernel,
      prestart: this.config.sessions.prestartContext ? language : undefined,
      isolation,
      network:
        network && this.hooks.egress
          ? this.hooks.egress(network, { userId, sessionId: id })
          : undefined,
      onExit: (result, violation) => {
        if (!this.sessions.has(id)) return;
        this.logger.warn(
          { sessionId: id, status: result.status, violation },
          "session sandbox ended on its own",
        );
        const why = violation ? `its agent broke the protocol: ${violation}` : result.status;
        void this.destroy(id, userId, `sandbox ended: ${why}`, true);
      },
    });
  }

  get(id: string, userId: string, admin = false): SessionInfo {
    const live = this.sessions.get(id);
    const released = live ? undefined : this.pausing.releasedInfo(id, userId, admin);
    if (released) return { ...released };
    const s = this.ownedBy(id, userId, admin);
    return {
      ...s.info,
      lastUsedAt: new Date(s.lastUsedAt).toISOString(),
      ...this.pausing.view(s),
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

  /**
   * The session now ends `seconds` from now, or later if it already would:
   * extend never shortens. Its whole life stays within maxSessionTimeout from
   * creation (the sandbox's wall limit is set to that at creation, so the
   * sweeper, going by expiresAt, is what ends it).
   */
  extend(id: string, userId: string, seconds: number): SessionInfo {
    const s = this.ownedBy(id, userId);
    s.pause.check(id);
    const created = Date.parse(s.info.createdAt);
    const wanted = Date.now() + seconds * 1000;
    if (wanted - created > this.config.maxSessionTimeout * 1000)
      throw new WardenError(
        "INVALID_REQUEST",
        `timeout: a session lives at most ${this.config.maxSessionTimeout} s from its creation (maxSessionTimeout); at most ${Math.max(0, Math.floor((created + this.config.maxSessionTimeout * 1000 - Date.now()) / 1000))} s more for this one`,
      );
    s.expiresAt = Math.max(s.expiresAt, wanted);
    return this.get(id, userId);
  }

  /**
   * The session now ends `seconds` from now, earlier or later than it would
   * (E2B's setTimeout): unlike extend, this may shorten. Its whole life stays
   * within maxSessionTimeout from creation.
   */
  setExpiry(id: string, userId: string, seconds: number): SessionInfo {
    const s = this.ownedBy(id, userId);
    s.pause.check(id);
    const created = Date.parse(s.info.createdAt);
    const wanted = Date.now() + seconds * 1000;
    const latest = created + this.config.maxSessionTimeout * 1000;
    if (wanted > latest)
      throw new WardenError(
        "INVALID_REQUEST",
        `timeout: a session lives at most ${this.config.maxSessionTimeout} s from its creation (maxSessionTimeout); at most ${Math.max(0, Math.floor((latest - Date.now()) / 1000))} s more for this one`,
      );
    s.expiresAt = wanted;
    return this.get(id, userId);
  }

  /** One session's memory and CPU now, for its owner. */
  async usage(id: string, userId: string): Promise<{ memoryBytes: number; cpuTimeMs: number }> {
    return this.ownedBy(id, userId).sandbox.usage();
  }

  /** The caller's session, marked as used now (and again when the call ends). */
  private use(id: string, userId: string): LiveSession {
    const s = this.ownedBy(id, userId);
    s.pause.check(id);
    s.lastUsedAt = Date.now();
    return s;
  }

  private async using<T>(id: string, userId: string, work: (s: LiveSession) => Promise<T>) {
    const s = this.use(id, userId);
    try {
      return await work(s);
    } finally {
      s.lastUsedAt = Date.now();
    }
  }

  async command(id: string, userId: string, o: CommandOptions): Promise<CommandResult> {
    return this.using(id, userId, (s) => s.command(o));
  }

  /**
   * Runs a cell in the session's persistent context (python or javascript):
   * variables, imports and the working directory carry over. A timeout
   * interrupts the cell (KeyboardInterrupt), not the session.
   */
  async run(id: string, userId: string, o: RunCellOptions): Promise<CellResult> {
    return this.using(id, userId, (s) =>
      s.run({
        ...o,
        language: cellLanguage(o.language, s.info.language),
      }),
    );
  }

  /** The session's code contexts: its defaults, then named ones (E2B's contexts). */
  contexts(id: string, userId: string): CodeContextInfo[] {
    return this.use(id, userId).contexts.list();
  }

  async createContext(
    id: string,
    userId: string,
    o: { language: string; cwd: string },
  ): Promise<CodeContextInfo> {
    const language = contextLanguage(o.language);
    return this.using(id, userId, (s) => s.createContext(language, o.cwd));
  }

  async restartContext(id: string, userId: string, contextId: string): Promise<void> {
    return this.using(id, userId, (s) => s.restartContext(contextId));
  }

  async closeContext(id: string, userId: string, contextId: string): Promise<void> {
    return this.using(id, userId, (s) => s.closeContext(contextId));
  }

  async writeFile(id: string, userId: string, path: string, content: Buffer): Promise<void> {
    return this.using(id, userId, (s) => s.writeFile(path, content));
  }

  async readFile(id: string, userId: string, path: string): Promise<Buffer> {
    return this.using(id, userId, (s) => s.readFile(path));
  }

  async listFiles(id: string, userId: string, dir: string): Promise<FileEntry[]> {
    return this.using(id, userId, (s) => s.listFiles(dir));
  }

  async deleteFile(id: string, userId: string, path: string): Promise<void> {
    return this.using(id, userId, (s) => s.deleteFile(path));
  }

  async makeDir(id: string, userId: string, path: string): Promise<void> {
    return this.using(id, userId, (s) => s.makeDir(path));
  }

  /** lstat of a path in the workspace, and whether it stays inside (see PathStat). */
  async stat(id: string, userId: string, path: string): Promise<PathStat> {
    return this.using(id, userId, (s) => s.stat(path));
  }

  /** Renames a file or directory in the workspace (the destination's parents made). */
  async move(id: string, userId: string, source: string, destination: string): Promise<void> {
    return this.using(id, userId, (s) => s.move(source, destination));
  }

  /**
   * A connection to a server listening on `port` inside the session (web
   * previews), for its owner only: an admin key does not open another user's.
   */
  async openPort(id: string, userId: string, port: number): Promise<Socket> {
    return this.use(id, userId).openPort(port);
  }

  async destroy(id: string, userId: string, reason: string, admin = false): Promise<void> {
    if (!this.sessions.has(id) && this.pausing.releasedInfo(id, userId, admin)) {
      this.pausing.forget(id); // its sandbox is already gone
      await this.hooks.usage?.ended(id);
      return this.registryEnded(id, reason);
    }
    const s = this.ownedBy(id, userId, admin);
    await this.hooks.usage?.ended(id); // its last reading, before the sandbox goes
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
    await this.registryEnded(id, reason);
  }

  /** Cluster: the registry learns the end; a failure is logged (the reaper ends it with its worker). */
  private async registryEnded(id: string, reason: string): Promise<void> {
    await this.hooks.registry?.ended(id, reason.slice(0, 200)).catch((error: unknown) => {
      this.logger.warn({ sessionId: id, err: error }, "session registry: end not recorded");
    });
  }

  private async expire(): Promise<void> {
    const now = Date.now();
    this.pausing.sweep(now);
    for (const s of [...this.sessions.values()]) {
      // A paused session's clocks are stopped: the sweep above decides its end.
      if (s.pause.pausedAt !== null || s.pause.frozen) continue;
      const why =
        now >= s.expiresAt
          ? "TTL reached"
          : s.sandbox.inFlight === 0 && now - s.lastUsedAt >= s.idleMs
            ? "idle timeout"
            : null;
      if (why) await this.destroy(s.info.id, s.info.userId, why, true).catch(() => undefined);
    }
  }

  /** Starts a command that outlives the request (a server, a watcher). */
  startBackground(id: string, userId: string, o: BackgroundStart): BackgroundInfo {
    return this.use(id, userId).background.start(o);
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
    await this.use(id, userId).background.stdin(commandId, data, eof);
  }

  async signalBackground(
    id: string,
    userId: string,
    commandId: string,
    signal: CommandSignal,
  ): Promise<void> {
    await this.use(id, userId).background.signal(commandId, signal);
  }

  /** Freezes the session (see pausing.ts): nothing in it runs until it is resumed. */
  async pause(id: string, userId: string): Promise<SessionInfo> {
    await this.pausing.pause(this.ownedBy(id, userId));
    return this.get(id, userId);
  }

  async resume(id: string, userId: string): Promise<SessionInfo> {
    await this.pausing.resume(this.ownedBy(id, userId));
    return this.get(id, userId);
  }

  /** Where snapshots are kept; INVALID_REQUEST when this Warden keeps none. */
  snapshotStore(): SnapshotStore {
    if (!this.hooks.snapshots)
      throw new WardenError("INVALID_REQUEST", "snapshots: this Warden keeps none (no data dir)");
    return this.hooks.snapshots;
  }

  /** Saves the session's workspace (and its installed packages' list) as a snapshot. */
  async snapshot(id: string, userId: string): Promise<SnapshotInfo> {
    return this.pausing.snapshot(this.ownedBy(id, userId));
  }

  /**
   * Streams changes under a directory of the session to `onEvent` until the
   * returned stop is called or the session ends (then `onEnd`).
   */
  watch(
    id: string,
    userId: string,
    o: { path: string; recursive: boolean },
    onEvent: (event: WatchEvent) => void,
    onEnd: (error: Error | null) => void,
  ): Promise<() => void> {
    const s = this.use(id, userId);
    return watchDirectory(s, this.config.sessions.maxWatches, o, onEvent, onEnd);
  }

  /** Ends every session (shutdown). */
  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    await this.endAll("shutdown");
  }

  /** Ends every live session (a cluster worker declared gone: API nodes no longer route to them). */
  async endAll(reason: string): Promise<void> {
    await Promise.all(
      [...this.sessions.keys()].map((id) =>
        this.destroy(id, "", reason, true).catch(() => undefined),
      ),
    );
  }
}
