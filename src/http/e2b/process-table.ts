/**
 * E2B names processes by a pid; Warden's background commands have ids. Each
 * sandbox gets its own small table (pids from 1000 up, Warden's numbers, not
 * the kernel's) that maps them, with what E2B shows of each: its config, its
 * tag, whether its stdin is open. Rows live as long as the session keeps the
 * command; tables of ended sessions are dropped when a new one is made.
 */
import type { BackgroundInfo } from "../../sessions/commands.js";
import type { SessionManager } from "../../sessions/manager.js";
import type { SandboxCall } from "./plane.js";
import { PlaneError } from "./plane.js";
import type { ProcessConfig, Selector } from "./process-schemas.js";

export interface Proc {
  pid: number;
  commandId: string;
  tag: string | undefined;
  config: ProcessConfig;
  /** Started with stdin: true and not closed since. */
  stdinOpen: boolean;
}

/** Start and Connect streams open at once on one sandbox (each may hold some output for its client). */
export const MAX_STREAMS = 16;
const FIRST_PID = 1000;

class Table {
  next = FIRST_PID;
  readonly rows = new Map<number, Proc>();
  streams = 0;
}

export class ProcessTables {
  private readonly tables = new Map<string, Table>();

  constructor(private readonly sessions: SessionManager) {}

  /** The sandbox's table, its rows cut to the commands the session still keeps. */
  private table(call: SandboxCall): { t: Table; commands: BackgroundInfo[] } {
    let t = this.tables.get(call.sessionId);
    if (!t) {
      this.dropEnded();
      this.tables.set(call.sessionId, (t = new Table()));
    }
    const commands = this.sessions.listBackground(call.sessionId, call.userId);
    const kept = new Set(commands.map((c) => c.id));
    for (const [pid, row] of t.rows) if (!kept.has(row.commandId)) t.rows.delete(pid);
    return { t, commands };
  }

  private dropEnded(): void {
    for (const id of this.tables.keys()) {
      try {
        if (this.sessions.get(id, "", true).status === "ended") this.tables.delete(id);
      } catch {
        this.tables.delete(id);
      }
    }
  }

  add(call: SandboxCall, row: Omit<Proc, "pid">): Proc {
    const { t } = this.table(call);
    const proc = { ...row, pid: t.next++ };
    t.rows.set(proc.pid, proc);
    return proc;
  }

  /**
   * Running commands with their pids. Commands started through Warden's own
   * API get a pid on first sight, so E2B clients see and reach them too.
   */
  running(call: SandboxCall): Proc[] {
    const { t, commands } = this.table(call);
    const byCommand = new Map([...t.rows.values()].map((r) => [r.commandId, r]));
    const out: Proc[] = [];
    for (const c of commands) {
      if (c.status !== "running") continue;
      let row = byCommand.get(c.id);
      if (!row) {
        const argv = typeof c.command === "string" ? ["/bin/sh", "-c", c.command] : c.command;
        row = {
          pid: t.next++,
          commandId: c.id,
          tag: undefined,
          config: { cmd: argv[0] ?? "", args: argv.slice(1), envs: {} },
          stdinOpen: true,
        };
        t.rows.set(row.pid, row);
      }
      out.push(row);
    }
    return out;
  }

  /** The running process a selector names; not_found as envd says it. */
  find(call: SandboxCall, s: Selector): Proc {
    const found = this.running(call).find((p) =>
      s.pid !== undefined ? p.pid === s.pid : p.tag === s.tag,
    );
    if (!found)
      throw new PlaneError(
        "not_found",
        s.pid !== undefined
          ? `process with pid ${s.pid} not found`
          : `process with tag ${s.tag} not found`,
        404,
      );
    return found;
  }

  /** Counts an open stream against MAX_STREAMS; the returned function gives it back. */
  openStream(call: SandboxCall): () => void {
    const { t } = this.table(call);
    if (t.streams >= MAX_STREAMS)
      throw new PlaneError(
        "resource_exhausted",
        `at most ${MAX_STREAMS} process streams (Start, Connect) are open at once on one sandbox`,
        429,
      );
    t.streams++;
    let open = true;
    return () => {
      if (open) t.streams--;
      open = false;
    };
  }
}
