/**
 * A sandbox that lives: one box, one cgroup and one set of limits for its
 * whole life, with Warden's agent (native/agent.cjs, run by the system's
 * Node inside) as its program. Requests go in on the agent's stdin as JSON
 * lines; events come back on its stdout. Everything the agent does — run a
 * command, read or write a file — happens inside the sandbox. The agent is
 * on the sandbox's side of the wall: its stdout is read through an
 * AgentChannel (bounded lines, strict schema), and a violation ends the session.
 */
import type { Isolation } from "../contract/isolation.js";
import { once } from "node:events";
import type { Socket } from "node:net";
import { PassThrough } from "node:stream";
import { WardenError, type ErrorCode } from "../errors.js";
import { findTool } from "../runtimes/registry.js";
import type { SandboxBox as Box } from "../sandbox/box.js";
import type { Cgroup } from "../sandbox/cgroups/index.js";
import type { SandboxHost } from "../sandbox/host.js";
import type {
  RunResult,
  SandboxEnvironment,
  SandboxLimits,
  SandboxNetwork,
} from "../sandbox/types.js";
import { AgentChannel } from "./agent-channel.js";
import type { AgentEvent, AgentOp } from "./agent-protocol.js";
import type { ContextLanguage } from "../contract/session.js";
import type { PackageIndexes } from "../environments/indexes.js";
import { kernelEnv, kernelMounts } from "./kernel-mounts.js";
import { prefixEnv } from "./prefixes.js";
import { PREVIEW_SOCKET, PreviewRelay } from "./preview.js";

export type { AgentEvent } from "./agent-protocol.js";

/** A request to the agent: its op and fields (the id is added here). */
export type AgentRequest = { op: AgentOp } & Record<string, unknown>;

export interface AgentSandboxOptions {
  limits: SandboxLimits;
  /** Where pip and npm look for packages (config `environments`). */
  indexes: PackageIndexes;
  searchPath: readonly string[];
  /** Egress through the proxy for everything in the session; absent = no network. */
  network?: SandboxNetwork | undefined;
  /** A prebuilt environment bound read-only for the session's whole life. */
  environment?: SandboxEnvironment | null | undefined;
  /** Called when the sandbox ends on its own (TTL, memory, crash, a protocol violation). */
  onExit?: (result: RunResult, violation: string | null) => void;
  /** Python cells through IPython when importable (auto), or always the built-in kernel. */
  pythonKernel?: "auto" | "builtin" | undefined;
  /** The context the agent starts before the first cell asks for it (sessions.prestartContext). */
  prestart?: ContextLanguage | undefined;
  /**
   * Session-wide variables: the agent's own environment, so every command and
   * kernel it starts inherits them. Warden's own variables win a clash.
   */
  env?: Readonly<Record<string, string>> | undefined;
  /** The tier of the session's box (resolved by the manager). @default "namespaces" */
  isolation?: Isolation | undefined;
}

const AGENT_PATH = "/.warden/lib/agent.cjs";

/**
 * The codes an agent's error may carry: the ones native/agent.cjs sends. Any
 * other (UNAUTHORIZED, a retryable one...) is a taken-over agent speaking for
 * Warden, and becomes INTERNAL.
 */
const AGENT_CODES = new Set<ErrorCode>([
  "INVALID_REQUEST",
  "NOT_FOUND",
  "QUOTA_EXCEEDED",
  "PERMISSION_DENIED",
  "UNSUPPORTED_LANGUAGE",
  "UPSTREAM_UNAVAILABLE",
  "INTERNAL",
]);

function knownCode(code: string): ErrorCode {
  return AGENT_CODES.has(code as ErrorCode) ? (code as ErrorCode) : "INTERNAL";
}

/**
 * How long a file, listing, artifact, cancel or relay request may take the
 * agent: these are quick when the agent is well; past it the call fails and
 * the agent's late answer is dropped.
 */
const REQUEST_DEADLINE_MS = 30_000;

/** Requests queued for an agent that does not read, at most (one more may always go). */
const MAX_UNSENT_BYTES = 32 * 1024 * 1024;

export class AgentSandbox {
  private readonly input = new PassThrough();
  private readonly channel: AgentChannel;
  private nextId = 1;
  private readonly stop = new AbortController();
  readonly ended: Promise<RunResult>;
  result: RunResult | null = null;
  private cgroup: Cgroup | undefined;
  /** Requests not yet answered: a session at work is never idle. */
  inFlight = 0;
  /** The session's cap on each of stdout and stderr per command or cell (limits.outputBytes). */
  readonly outputBytes: number;

  private constructor(
    readonly box: Box,
    private readonly relay: PreviewRelay,
    ready: () => void,
    options: AgentSandboxOptions,
    host: SandboxHost,
  ) {
    const node = findTool(["node", "nodejs"], options.searchPath);
    if (!node)
      throw new WardenError(
        "ISOLATION_UNAVAILABLE",
        "sessions need Node.js in the system search path",
      );
    const python = findTool(["python3"], options.searchPath);
    this.outputBytes = options.limits.outputBytes;
    this.channel = new AgentChannel({
      onReady: ready,
      onViolation: () => {
        // Only this session ends: its sandbox is killed; Warden goes on.
        this.stop.abort();
        this.input.end();
      },
    });
    this.ended = box
      .run({
        argv: [node, AGENT_PATH],
        mounts: [
          { source: host.privateFile("agent.cjs"), target: AGENT_PATH },
          ...kernelMounts(host),
          { source: relay.path, target: PREVIEW_SOCKET },
        ],
        network: options.network,
        env: {
          ...options.env,
          ...options.environment?.env,
          ...kernelEnv(python, options.pythonKernel),
          // The kernels run the session venv's python (WARDEN_PYTHON), layered on `python`.
          ...prefixEnv(python, options.indexes),
          ...(options.prestart ? { WARDEN_PRESTART: options.prestart } : {}),
        },
        stdin: this.input,
        retainOutput: false,
        // The agent's stdout is bounded per line by the channel, not as a whole.
        limits: { ...options.limits, outputBytes: Number.MAX_SAFE_INTEGER },
        signal: this.stop.signal,
        onCgroup: (cgroup) => (this.cgroup = cgroup),
        onOutput: (chunk) => {
          if (chunk.stream === "stdout") this.channel.receive(chunk.data);
        },
      })
      .then((ran) => {
        const violation = this.channel.violation;
        const result: RunResult = violation
          ? { ...ran, status: "error", errorMessage: `agent protocol violation: ${violation}` }
          : ran;
        this.result = result;
        this.channel.failAll(new WardenError("INTERNAL", `session ended: ${result.status}`));
        options.onExit?.(result, violation);
        return result;
      });
  }

  /** Starts the sandbox and waits until its agent is ready. */
  static async start(
    host: SandboxHost,
    diskMb: number,
    options: AgentSandboxOptions,
  ): Promise<AgentSandbox> {
    const box = await host.prepare({
      diskMb,
      binds: options.environment?.binds,
      isolation: options.isolation ?? "namespaces",
    });
    const relay = new PreviewRelay(box.sidePath("preview"));
    let markReady!: () => void;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    let sandbox: AgentSandbox;
    try {
      await relay.listen(box.uid);
      sandbox = new AgentSandbox(box, relay, markReady, options, host);
    } catch (error) {
      await relay.close();
      await box.destroy();
      throw error;
    }
    const ended = sandbox.ended.then((r) => {
      throw new WardenError(
        "INTERNAL",
        `session sandbox failed to start: ${r.errorMessage ?? r.status}`,
      );
    });
    try {
      await Promise.race([ready, ended]);
    } catch (error) {
      await relay.close();
      await box.destroy();
      throw error;
    }
    return sandbox;
  }

  /**
   * Sends a request; `onEvent` sees every event for it; resolves with the
   * final one (exit, ok, file, list) or rejects with the agent's error.
   */
  request(body: AgentRequest, onEvent?: (event: AgentEvent) => void): Promise<AgentEvent> {
    return this.send(body, onEvent, false, REQUEST_DEADLINE_MS).done;
  }

  /**
   * Like request(), with the agent's id for the request (to address a running
   * command later). A `background` request does not keep the session from idling.
   */
  send(
    body: AgentRequest,
    onEvent?: (event: AgentEvent) => void,
    background = false,
    deadlineMs?: number,
  ): { id: number; done: Promise<AgentEvent> } {
    const id = this.nextId++;
    if (this.result || this.channel.violation)
      return { id, done: Promise.reject(new WardenError("NOT_FOUND", "the session has ended")) };
    // Code in the session can stop the agent reading: requests would pile up here.
    if (this.input.writableLength > MAX_UNSENT_BYTES)
      return {
        id,
        done: Promise.reject(
          new WardenError("UPSTREAM_UNAVAILABLE", "the session is not taking requests"),
        ),
      };
    if (!background) this.inFlight++;
    const done = new Promise<AgentEvent>((resolve, reject) => {
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        if (!background) this.inFlight--;
        return true;
      };
      this.channel.expect(id, {
        op: body.op,
        onEvent: (event) => onEvent?.(event),
        resolve: (event) => {
          if (!settle()) return;
          if (event.type === "error")
            reject(new WardenError(knownCode(event.code), event.message || "agent error"));
          else resolve(event);
        },
        reject: (error) => {
          if (settle()) reject(error);
        },
      });
      this.input.write(`${JSON.stringify({ ...body, id })}\n`);
    });
    if (deadlineMs !== undefined) {
      // The host's own deadline: an agent that does not answer cannot hold the call.
      const timer = setTimeout(
        () =>
          this.channel.abandon(
            id,
            new WardenError(
              "UPSTREAM_TIMEOUT",
              `the session did not answer its ${body.op} in time`,
            ),
          ),
        deadlineMs,
      );
      done.then(
        () => clearTimeout(timer),
        () => clearTimeout(timer),
      );
    }
    return { id, done };
  }

  /** The agent broke the protocol in a way only its whole answer shows: the session ends. */
  breach(reason: string): void {
    this.channel.violate(reason);
  }

  /** Fails request `id` now (see AgentChannel.abandon); the agent's late answers are dropped. */
  abandon(id: number, error: WardenError): void {
    this.channel.abandon(id, error);
  }

  /** Live memory and CPU of the whole session, read from its cgroup. */
  async usage(): Promise<{ memoryBytes: number; cpuTimeMs: number }> {
    return this.cgroup && !this.result ? this.cgroup.usage() : { memoryBytes: 0, cpuTimeMs: 0 };
  }

  /**
   * How many processes the kernel has OOM-killed in the session's cgroup so
   * far, read on the host: what says a call died of the memory limit (the
   * agent's or a kernel's own word could be forged by code in the session).
   */
  async oomKills(): Promise<number> {
    if (!this.cgroup || this.result) return 0;
    return this.cgroup.accounting().then(
      (a) => a.oomKills,
      () => 0, // the cgroup is going away with the session
    );
  }

  /**
   * A connection to `port` on the session's own loopback, made by the agent
   * inside (web previews), paused until its reader resumes it. Rejects with
   * UPSTREAM_UNAVAILABLE when nothing listens there.
   */
  async openPort(port: number): Promise<Socket> {
    const { token, socket, cancel } = this.relay.expect();
    try {
      // The dial is bounded as a whole (the agent's connect could hang on a full backlog).
      await Promise.race([
        this.request({ op: "relay", port, token, socket: PREVIEW_SOCKET }),
        socket,
      ]);
      return await socket;
    } catch (error) {
      cancel();
      throw error;
    }
  }

  /**
   * Writes a line the agent does not answer (a piece of an archive to
   * restore), waiting while the agent is behind: the host never queues more
   * than a pipe's worth of it.
   */
  async feed(body: Record<string, unknown>): Promise<void> {
    if (this.result) throw new WardenError("NOT_FOUND", "the session has ended");
    if (!this.input.write(`${JSON.stringify(body)}\n`))
      await Promise.race([once(this.input, "drain"), this.ended]);
  }

  /** Freezes every process in the session (pause); resolves once the kernel says all are. */
  async freeze(): Promise<void> {
    if (!this.cgroup || this.result) throw new WardenError("NOT_FOUND", "the session has ended");
    try {
      await this.cgroup.freeze();
    } catch (error) {
      throw new WardenError("INTERNAL", `pause: ${(error as Error).message}`);
    }
  }

  /** Lets a frozen session run again. */
  async thaw(): Promise<void> {
    if (this.cgroup && !this.result) await this.cgroup.thaw();
  }

  /** Kills everything in the sandbox and removes it. Safe to call twice. */
  async close(): Promise<RunResult> {
    this.stop.abort();
    this.input.end();
    const result = await this.ended;
    await this.relay.close();
    await this.box.destroy();
    return result;
  }
}
