/**
 * How a session call's end becomes a status, in the same words as an
 * execution's (DESIGN §3). Pure, so each precedence rule is unit-tested. The
 * facts come from the host: Warden's own timers and aborts, the bytes it
 * received, and the session cgroup's OOM-kill count — never a status the
 * agent or a kernel reports about itself (code in the session can rewrite both).
 */
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
