/**
 * A sandbox that lives: one box, one cgroup and one set of limits for its
 * whole life, with Warden's agent (native/agent.cjs, run by the system's
 * Node inside) as its program. Requests go in on the agent's stdin as JSON
 * lines; events come back on its stdout. Everything the agent does — run a
 * command, read or write a file — happens inside the sandbox.
 */
import type { Socket } from "node:net";
import { PassThrough } from "node:stream";
import { ERROR_CODES, WardenError, type ErrorCode } from "../errors.js";
import { findTool } from "../runtimes/registry.js";
import type { Box } from "../sandbox/box.js";
import type { Cgroup } from "../sandbox/cgroups/index.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { RunResult, SandboxLimits, SandboxNetwork } from "../sandbox/types.js";
import { PREVIEW_SOCKET, PreviewRelay } from "./preview.js";

export interface AgentEvent {
  id?: number;
  type: string;
  [key: string]: unknown;
}

export interface AgentSandboxOptions {
  limits: SandboxLimits;
  searchPath: readonly string[];
  /** Egress through the proxy for everything in the session; absent = no network. */
  network?: SandboxNetwork | undefined;
  /** Called when the sandbox ends on its own (TTL, memory, crash). */
  onExit?: (result: RunResult) => void;
}

const AGENT_PATH = "/.warden/lib/agent.cjs";
/** Events that are part of a request's answer, before its final event. */
const STREAMED = new Set(["stdout", "stderr", "artifact"]);
const KERNEL_PATH = "/.warden/lib/kernel.py";
const JS_KERNEL_PATH = "/.warden/lib/kernel.cjs";

/** A string field of an agent event ("" when absent or not a string). */
export function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function knownCode(code: unknown): ErrorCode {
  return typeof code === "string" && code in ERROR_CODES ? (code as ErrorCode) : "INTERNAL";
}

export class AgentSandbox {
  private readonly input = new PassThrough();
  private readonly pending = new Map<number, (event: AgentEvent) => void>();
  private nextId = 1;
  private buffer = "";
  private partial: string[] = [];
  private readonly stop = new AbortController();
  readonly ended: Promise<RunResult>;
  result: RunResult | null = null;
  private cgroup: Cgroup | undefined;
  /** Requests not yet answered: a session at work is never idle. */
  inFlight = 0;

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
    this.ended = box
      .run(
        {
          argv: [node, AGENT_PATH],
          mounts: [
            { source: host.privateFile("agent.cjs"), target: AGENT_PATH },
            { source: host.privateFile("kernel.py"), target: KERNEL_PATH },
            { source: host.privateFile("kernel.cjs"), target: JS_KERNEL_PATH },
            { source: relay.path, target: PREVIEW_SOCKET },
          ],
          network: options.network,
          env: python
            ? { WARDEN_PYTHON: python, MPLBACKEND: "Agg", PYTHONDONTWRITEBYTECODE: "1" }
            : {},
          stdin: this.input,
          retainOutput: false,
          limits: { ...options.limits, outputBytes: Number.MAX_SAFE_INTEGER },
          signal: this.stop.signal,
          onCgroup: (cgroup) => (this.cgroup = cgroup),
          onOutput: (chunk) => {
            if (chunk.stream === "stdout") this.receive(chunk.data, ready);
          },
        },
        { last: true },
      )
      .then((result) => {
        this.result = result;
        for (const [, deliver] of this.pending)
          deliver({ type: "error", code: "INTERNAL", message: `session ended: ${result.status}` });
        this.pending.clear();
        options.onExit?.(result);
        return result;
      });
  }

  /** Starts the sandbox and waits until its agent is ready. */
  static async start(
    host: SandboxHost,
    diskMb: number,
    options: AgentSandboxOptions,
  ): Promise<AgentSandbox> {
    const box = await host.prepare({ diskMb });
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

  private receive(data: string, ready: () => void): void {
    // Only the new data can hold the end of a line: a long line (a file's
    // bytes) is searched once, not again with every chunk.
    if (!data.includes("\n")) {
      this.partial.push(data);
      return;
    }
    this.buffer = this.partial.join("") + data;
    this.partial = [];
    let newline;
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      let event: AgentEvent;
      try {
        event = JSON.parse(line) as AgentEvent;
      } catch {
        continue;
      }
      if (event.type === "ready") ready();
      else if (event.id !== undefined) this.pending.get(event.id)?.(event);
    }
    if (this.buffer) this.partial.push(this.buffer);
    this.buffer = "";
  }

  /**
   * Sends a request; `onEvent` sees every event for it; resolves with the
   * final one (exit, ok, file, list) or rejects with the agent's error.
   */
  request(
    body: Record<string, unknown>,
    onEvent?: (event: AgentEvent) => void,
  ): Promise<AgentEvent> {
    return this.send(body, onEvent).done;
  }

  /**
   * Like request(), with the agent's id for the request (to address a running
   * command later). A `background` request does not keep the session from idling.
   */
  send(
    body: Record<string, unknown>,
    onEvent?: (event: AgentEvent) => void,
    background = false,
  ): { id: number; done: Promise<AgentEvent> } {
    const id = this.nextId++;
    if (this.result)
      return { id, done: Promise.reject(new WardenError("NOT_FOUND", "the session has ended")) };
    if (!background) this.inFlight++;
    const done = new Promise<AgentEvent>((resolve, reject) => {
      this.pending.set(id, (event) => {
        if (STREAMED.has(event.type)) {
          onEvent?.(event);
          return;
        }
        this.pending.delete(id);
        if (!background) this.inFlight--;
        if (event.type === "error")
          reject(new WardenError(knownCode(event.code), text(event.message) || "agent error"));
        else resolve(event);
      });
      this.input.write(`${JSON.stringify({ ...body, id })}\n`);
    });
    return { id, done };
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
