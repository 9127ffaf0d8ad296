/**
 * How a session call's end becomes a status, in the same words as an
 * execution's (DESIGN §3). Pure, so each precedence rule is unit-tested. The
 * facts come from the host: Warden's own timers and aborts, the bytes it
 * received, and the session cgroup's OOM-kill count — never a status the
 * agent or a kernel reports about itself (code in the session can rewrite both).
 */
import { cutUtf8 } from "./output-cap.js";
import type { CommandStatus } from "../contract/session.js";

export interface CallFacts {
  /** Warden stopped it for its caller: a kill route, a cancelled or vanished client. */
  killed: boolean;
  timedOut: boolean;
  /** Output went past the limit (as counted by the host). */
  truncated: boolean;
  /** The session cgroup's OOM-kill count rose while the call ran. */
  oomKilled: boolean;
  /** It ended well: exit code 0, or a cell without an error. */
  ok: boolean;
}

/** Warden's own actions first, then the kernel's (OOM), then the program's own end. */
export function callStatus(f: CallFacts): CommandStatus {
  if (f.killed && !f.ok) return "killed";
  if (f.timedOut) return "timeout";
  if (f.truncated) return "output_limit";
  if (f.oomKilled && !f.ok) return "memory_limit";
  return f.ok ? "completed" : "failed";
}

/**
 * Counts each stream's bytes as they arrive and drops what goes past `cap`:
 * the host enforces the output limit itself, whatever the agent claims to have
 * cut, and knows which stream was truncated.
 */
export class OutputTally {
  readonly bytes = { stdout: 0, stderr: 0 };
  readonly truncated = { stdout: false, stderr: false };

  constructor(private readonly cap: number) {}

  /** The part of `data` that fits under the limit ("" once it is reached). */
  take(stream: "stdout" | "stderr", data: string): string {
    const room = this.cap - this.bytes[stream];
    const size = Buffer.byteLength(data);
    if (size <= room) {
      this.bytes[stream] += size;
      return data;
    }
    this.truncated[stream] = true;
    if (room <= 0) return "";
    // Cut on a character boundary, so the kept text is valid and within the limit.
    const kept = cutUtf8(data, room);
    this.bytes[stream] += Buffer.byteLength(kept);
    return kept;
  }

  /**
   * Folds in the agent's own "truncated": believed only for a stream whose
   * received bytes did reach the limit (the agent stops exactly there), so a
   * lying agent can mislabel nothing else.
   */
  settle(agentSaysTruncated: boolean): { stdout: boolean; stderr: boolean } {
    if (agentSaysTruncated)
      for (const stream of ["stdout", "stderr"] as const)
        if (this.bytes[stream] >= this.cap) this.truncated[stream] = true;
    return { ...this.truncated };
  }

  get any(): boolean {
    return this.truncated.stdout || this.truncated.stderr;
  }
}
