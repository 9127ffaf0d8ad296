/**
 * Background commands of one session: started, listed, streamed, fed
 * standard input and signalled while the session lives. Their output is kept
 * (up to the output limit per stream) so a client attaching late sees it from
 * the start. They run in the session's cgroup like everything else in it, and
 * end with it.
 */
import { WardenError } from "../errors.js";
import type { OutputChunk } from "../sandbox/types.js";
import { ulid } from "../util/ids.js";
import { text, type AgentSandbox } from "./agent-sandbox.js";

export interface BackgroundInfo {
  id: string;
  command: string[] | string;
  status: "running" | "exited";
  exitCode: number | null;
  signal: string | null;
  startedAt: string;
  endedAt: string | null;
  /** Output beyond the limit was dropped. */
  truncated: boolean;
}

export type BackgroundEvent =
  { type: "stdout" | "stderr"; data: string } | { type: "exit"; command: BackgroundInfo };

export interface BackgroundStart {
  command: string[] | string;
  cwd?: string | undefined;
  env?: Record<string, string> | undefined;
  stdin?: string | undefined;
}

/** Signals a client may send to a background command's process group. */
export const SIGNALS = ["SIGTERM", "SIGKILL", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2"] as const;
export type CommandSignal = (typeof SIGNALS)[number];

/** Running at once per session; finished ones are kept for listing up to KEPT. */
const MAX_RUNNING = 8;
const KEPT = 16;

interface Entry {
  info: BackgroundInfo;
  agentId: number;
  chunks: OutputChunk[];
  listeners: Set<(event: BackgroundEvent) => void>;
}

export class BackgroundCommands {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly sandbox: AgentSandbox,
    private readonly outputBytes: number,
  ) {}

  private entry(id: string): Entry {
    const e = this.entries.get(id);
    if (!e) throw new WardenError("NOT_FOUND", `command ${id} not found`);
    return e;
  }

  get running(): number {
    return [...this.entries.values()].filter((e) => e.info.status === "running").length;
  }

  start(o: BackgroundStart): BackgroundInfo {
    if (this.running >= MAX_RUNNING)
      throw new WardenError(
        "QUOTA_EXCEEDED",
        `background: at most ${MAX_RUNNING} background commands run at once in a session`,
      );
    this.forgetOldest();
    const info: BackgroundInfo = {
      id: `cmd_${ulid()}`,
      command: o.command,
      status: "running",
      exitCode: null,
      signal: null,
      startedAt: new Date().toISOString(),
      endedAt: null,
      truncated: false,
    };
    const entry: Entry = { info, agentId: 0, chunks: [], listeners: new Set() };
    const emit = (event: BackgroundEvent): void => {
      for (const listener of entry.listeners) listener(event);
    };
    const { id, done } = this.sandbox.send(
      {
        op: "exec",
        ...(typeof o.command === "string" ? { shell: o.command } : { argv: o.command }),
        cwd: o.cwd,
        env: o.env,
        stdin: o.stdin,
        keepStdin: true,
        timeoutMs: 0, // lives until it ends, is killed, or the session ends
        outputBytes: this.outputBytes,
      },
      (event) => {
        const chunk = { stream: event.type as "stdout" | "stderr", data: text(event.data) };
        entry.chunks.push(chunk);
        emit({ type: chunk.stream, data: chunk.data });
      },
      true,
    );
    entry.agentId = id;
    this.entries.set(info.id, entry);
    const finish = (exitCode: number | null, signal: string | null, truncated: boolean): void => {
      Object.assign(info, {
        status: "exited",
        exitCode,
        signal,
        truncated,
        endedAt: new Date().toISOString(),
      });
      emit({ type: "exit", command: { ...info } });
      entry.listeners.clear();
    };
    done.then(
      (exit) =>
        finish(
          typeof exit.exitCode === "number" ? exit.exitCode : null,
          typeof exit.signal === "string" ? exit.signal : null,
          exit.truncated === true,
        ),
      () => finish(null, null, false),
    );
    return { ...info };
  }

  /** Drops the oldest finished entries beyond what is kept. */
  private forgetOldest(): void {
    for (const [id, e] of this.entries) {
      if (this.entries.size < KEPT) return;
      if (e.info.status === "exited") this.entries.delete(id);
    }
  }

  list(): BackgroundInfo[] {
    return [...this.entries.values()].map((e) => ({ ...e.info }));
  }

  /** A command's state and output so far; `follow` sees what comes next until it exits. */
  get(id: string): BackgroundInfo & { stdout: string; stderr: string } {
    const e = this.entry(id);
    const out = { stdout: "", stderr: "" };
    for (const c of e.chunks) out[c.stream] += c.data;
    return { ...e.info, ...out };
  }

  /**
   * Replays the output so far to `listener`, then passes on what follows until
   * the command exits. Returns the unsubscribe function.
   */
  follow(id: string, listener: (event: BackgroundEvent) => void): () => void {
    const e = this.entry(id);
    for (const c of e.chunks) listener({ type: c.stream, data: c.data });
    if (e.info.status === "exited") {
      listener({ type: "exit", command: { ...e.info } });
      return () => undefined;
    }
    e.listeners.add(listener);
    return () => e.listeners.delete(listener);
  }

  async stdin(id: string, data: string, eof: boolean): Promise<void> {
    const e = this.entry(id);
    if (e.info.status !== "running")
      throw new WardenError("INVALID_REQUEST", `command ${id} has exited`);
    await this.sandbox.request({ op: "stdin", target: e.agentId, data, eof });
  }

  async signal(id: string, signal: CommandSignal): Promise<void> {
    const e = this.entry(id);
    if (e.info.status !== "running") return;
    await this.sandbox.request({ op: "signal", target: e.agentId, signal });
  }
}
