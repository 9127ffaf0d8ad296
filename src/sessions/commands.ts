/**
 * Background commands of one session: started, listed, streamed, fed
 * standard input and signalled while the session lives. Their output is kept
 * (up to the output limit per stream) so a client attaching late sees it from
 * the start. They run in the session's cgroup like everything else in it, and
 * end with it.
 */
import type { z } from "zod";
import { WardenError } from "../errors.js";
import type { OutputChunk } from "../sandbox/types.js";
import { ulid } from "../util/ids.js";
import { text, type AgentSandbox } from "./agent-sandbox.js";
import { callStatus, OutputTally } from "./outcome.js";
import type { BackgroundCommandSchema } from "./schemas.js";

/** A background command as every interface shows it (see BackgroundCommandSchema). */
export type BackgroundInfo = z.infer<typeof BackgroundCommandSchema>;

/** Its output as it comes, then one `result` (the command, ended) as the last event. */
export type BackgroundEvent =
  { type: "stdout" | "stderr"; data: string } | { type: "result"; command: BackgroundInfo };

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
  tally: OutputTally;
  /** A client asked for it to be signalled (the kill route): its end is `killed`. */
  killRequested: boolean;
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
      success: false,
      exitCode: null,
      signal: null,
      startedAt: new Date().toISOString(),
      endedAt: null,
      truncated: { stdout: false, stderr: false },
    };
    const entry: Entry = {
      info,
      agentId: 0,
      chunks: [],
      tally: new OutputTally(this.outputBytes),
      killRequested: false,
      listeners: new Set(),
    };
    const emit = (event: BackgroundEvent): void => {
      for (const listener of entry.listeners) listener(event);
    };
    const oomBefore = this.sandbox.oomKills();
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
        if (event.type !== "stdout" && event.type !== "stderr") return;
        const stream = event.type;
        const data = entry.tally.take(stream, text(event.data));
        if (!data) return;
        entry.chunks.push({ stream, data });
        emit({ type: stream, data });
      },
      true,
    );
    entry.agentId = id;
    this.entries.set(info.id, entry);
    /** `exit` is null when the agent refused it (not found) or the session ended under it. */
    const finish = async (exit: Record<string, unknown> | null): Promise<void> => {
      const exitCode = typeof exit?.exitCode === "number" ? exit.exitCode : null;
      const oomKilled = exit !== null && (await this.sandbox.oomKills()) > (await oomBefore);
      const truncated = entry.tally.settle(exit?.truncated === true);
      // The session ending under it is Warden's kill; a refusal (not found) is its failure.
      const status = callStatus({
        killed: entry.killRequested || (exit === null && this.sandbox.result !== null),
        timedOut: false,
        truncated: truncated.stdout || truncated.stderr,
        oomKilled,
        ok: exitCode === 0,
      });
      Object.assign(info, {
        status,
        success: status === "completed",
        exitCode,
        signal: typeof exit?.signal === "string" ? exit.signal : null,
        truncated,
        endedAt: new Date().toISOString(),
      });
      emit({ type: "result", command: { ...info } });
      entry.listeners.clear();
    };
    done.then(finish, () => finish(null)).catch(() => undefined);
    return { ...info };
  }

  /** Drops the oldest finished entries beyond what is kept. */
  private forgetOldest(): void {
    for (const [id, e] of this.entries) {
      if (this.entries.size < KEPT) return;
      if (e.info.status !== "running") this.entries.delete(id);
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
   * the command ends with a `result`. Returns the unsubscribe function.
   */
  follow(id: string, listener: (event: BackgroundEvent) => void): () => void {
    const e = this.entry(id);
    for (const c of e.chunks) listener({ type: c.stream, data: c.data });
    if (e.info.status !== "running") {
      listener({ type: "result", command: { ...e.info } });
      return () => undefined;
    }
    e.listeners.add(listener);
    return () => e.listeners.delete(listener);
  }

  async stdin(id: string, data: string, eof: boolean): Promise<void> {
    const e = this.entry(id);
    if (e.info.status !== "running")
      throw new WardenError("INVALID_REQUEST", `command ${id} has ended (${e.info.status})`);
    await this.sandbox.request({ op: "stdin", target: e.agentId, data, eof });
  }

  async signal(id: string, signal: CommandSignal): Promise<void> {
    const e = this.entry(id);
    if (e.info.status !== "running") return;
    e.killRequested = true;
    await this.sandbox.request({ op: "signal", target: e.agentId, signal });
  }
}
