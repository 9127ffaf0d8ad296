/**
 * Background commands of one session: started, listed, streamed, fed
 * standard input and signalled while the session lives. Their output is kept
 * so a client attaching late sees it from the start: counted by the host as
 * it arrives, up to outputBytes per stream and command and BUDGET_FACTOR ×
 * outputBytes for the whole session (finished commands are forgotten first
 * to make room). They run in the session's cgroup like everything else in
 * it, and end with it.
 */
import type { z } from "zod";
import { WardenError } from "../errors.js";
import { ulid } from "../util/ids.js";
import type { EventOf } from "./agent-protocol.js";
import type { AgentSandbox } from "./agent-sandbox.js";
import { callStatus } from "./outcome.js";
import { ByteBudget, OutputLog } from "./output-cap.js";
import type { BackgroundCommandSchema } from "../contract/session.js";

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
  /**
   * Warden kills it (status `timeout`) this long after its start; 0 or absent:
   * it lives until it ends, is killed, or the session ends.
   */
  timeoutMs?: number | undefined;
  /** Standard input stays open for `stdin` calls (default); false: EOF after `stdin`. */
  keepStdin?: boolean | undefined;
}

/** Signals a client may send to a background command's process group. */
export const SIGNALS = ["SIGTERM", "SIGKILL", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2"] as const;
export type CommandSignal = (typeof SIGNALS)[number];

/** Running at once per session; finished ones are kept for listing up to KEPT. */
const MAX_RUNNING = 8;
const KEPT = 16;
/** All background output one session keeps, in multiples of outputBytes. */
const BUDGET_FACTOR = 4;

interface Entry {
  info: BackgroundInfo;
  agentId: number;
  log: OutputLog;
  /** A client asked for it to be signalled (the kill route): its end is `killed`. */
  killRequested: boolean;
  /** Warden's own timer (timeoutMs) killed it: its end is `timeout`. */
  timedOut: boolean;
  listeners: Set<(event: BackgroundEvent) => void>;
}

export class BackgroundCommands {
  private readonly entries = new Map<string, Entry>();
  private readonly budget: ByteBudget;

  constructor(
    private readonly sandbox: AgentSandbox,
    private readonly outputBytes: number,
  ) {
    this.budget = new ByteBudget(BUDGET_FACTOR * outputBytes);
  }

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
      log: new OutputLog(this.outputBytes, this.budget),
      killRequested: false,
      timedOut: false,
      listeners: new Set(),
    };
    const emit = (event: BackgroundEvent): void => {
      for (const listener of entry.listeners) listener(event);
    };
    // Read while the command starts; read again at its end only if it failed.
    const oomBefore = this.sandbox.oomKills();
    const { id, done } = this.sandbox.send(
      {
        op: "exec",
        ...(typeof o.command === "string" ? { shell: o.command } : { argv: o.command }),
        cwd: o.cwd,
        env: o.env,
        stdin: o.stdin,
        keepStdin: o.keepStdin ?? true,
        // The host keeps the clock (below): the agent is on the sandbox's side.
        timeoutMs: 0,
        outputBytes: this.outputBytes,
      },
      (event) => {
        if (event.type !== "stdout" && event.type !== "stderr") return;
        const bytes = Buffer.byteLength(event.data);
        if (this.budget.left < bytes) this.forgetFinished(bytes);
        const data = entry.log.push(event.type, event.data);
        if (data) emit({ type: event.type, data });
      },
      true,
    );
    entry.agentId = id;
    this.entries.set(info.id, entry);
    const timer = o.timeoutMs
      ? setTimeout(() => {
          entry.timedOut = true;
          this.sandbox.request({ op: "signal", target: id, signal: "SIGKILL" }).catch(() => {});
        }, o.timeoutMs)
      : null;
    timer?.unref();
    /** `exit` is null when the agent refused it (not found) or the session ended under it. */
    const finish = async (exit: EventOf<"exit"> | null): Promise<void> => {
      if (timer) clearTimeout(timer);
      const exitCode = exit?.exitCode ?? null;
      const oomKilled =
        exit !== null && exitCode !== 0 && (await this.sandbox.oomKills()) > (await oomBefore);
      const truncated = entry.log.settle(exit?.truncated === true);
      // The session ending under it is Warden's kill; a refusal (not found) is its failure.
      const status = callStatus({
        killed: entry.killRequested || (exit === null && this.sandbox.result !== null),
        timedOut: entry.timedOut,
        truncated: truncated.stdout || truncated.stderr,
        oomKilled,
        ok: exitCode === 0,
      });
      Object.assign(info, {
        status,
        success: status === "completed",
        exitCode,
        signal: exit?.signal ?? null,
        truncated,
        endedAt: new Date().toISOString(),
      });
      emit({ type: "result", command: { ...info } });
      entry.listeners.clear();
    };
    done
      .then(
        (event) => finish(event as EventOf<"exit">),
        () => finish(null),
      )
      .catch(() => undefined);
    return { ...info };
  }

  /** Drops the oldest finished entries beyond what is kept. */
  private forgetOldest(): void {
    for (const [id, e] of this.entries) {
      if (this.entries.size < KEPT) return;
      if (e.info.status !== "running") this.forget(id, e);
    }
  }

  /** Output is short of room in the session's budget: finished commands go first. */
  private forgetFinished(needed: number): void {
    for (const [id, e] of this.entries) {
      if (this.budget.left >= needed) return;
      if (e.info.status !== "running") this.forget(id, e);
    }
  }

  private forget(id: string, e: Entry): void {
    this.entries.delete(id);
    this.budget.left += e.log.retained;
  }

  list(): BackgroundInfo[] {
    return [...this.entries.values()].map((e) => ({ ...e.info }));
  }

  /** A command's state and output so far; `follow` sees what comes next until it exits. */
  get(id: string): BackgroundInfo & { stdout: string; stderr: string } {
    const e = this.entry(id);
    return { ...e.info, truncated: { ...e.log.truncated }, ...e.log.text() };
  }

  /**
   * Replays the output so far to `listener`, then passes on what follows until
   * the command ends with a `result`. Returns the unsubscribe function.
   */
  follow(id: string, listener: (event: BackgroundEvent) => void): () => void {
    const e = this.entry(id);
    for (const c of e.log.replay()) listener({ type: c.stream, data: c.data });
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
