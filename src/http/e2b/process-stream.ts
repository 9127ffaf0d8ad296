/**
 * A background command's events as envd's ProcessEvent stream: output as
 * base64 `data`, then one `end`, then how the stream ends. Used by Start
 * (from the command's first byte) and Connect (from now on: what was already
 * produced is skipped, as envd sends only new output).
 */
import type { BackgroundEvent, BackgroundInfo } from "../../sessions/commands.js";
import type { SessionManager } from "../../sessions/manager.js";
import { PlaneError, type SandboxCall } from "./plane.js";
import type { ProcessEvent } from "./process-schemas.js";

/** Go's names for the signals (ProcessState.String(): "signal: killed"). */
const GO_SIGNAL: Record<string, string> = {
  SIGKILL: "killed",
  SIGTERM: "terminated",
  SIGINT: "interrupt",
  SIGHUP: "hangup",
  SIGQUIT: "quit",
  SIGABRT: "aborted",
  SIGSEGV: "segmentation fault",
  SIGBUS: "bus error",
  SIGFPE: "floating point exception",
  SIGPIPE: "broken pipe",
  SIGUSR1: "user defined signal 1",
  SIGUSR2: "user defined signal 2",
  SIGXCPU: "CPU time limit exceeded",
  SIGXFSZ: "file size limit exceeded",
};

/** The `end` event of a finished command, in envd's words. */
export function endEvent(c: BackgroundInfo): ProcessEvent {
  if (c.signal !== null) {
    const status = `signal: ${GO_SIGNAL[c.signal] ?? c.signal}`;
    return { end: { exitCode: -1, exited: false, status, error: status } };
  }
  if (c.exitCode !== null) {
    const status = `exit status ${c.exitCode}`;
    return {
      end: { exitCode: c.exitCode, exited: true, status, ...(c.exitCode ? { error: status } : {}) },
    };
  }
  // No exit at all: the session ended under it, or the agent could not start it.
  const error =
    c.status === "killed"
      ? "the sandbox ended while the command ran"
      : "the command could not be started (does its cwd exist under /home/user?)";
  return { end: { exitCode: -1, exited: false, status: "error", error } };
}

/** How a stream ends after the `end` event: limits Warden applied are said, not hidden. */
export function endError(c: BackgroundInfo, timeoutMs: number | null): PlaneError | null {
  switch (c.status) {
    case "timeout":
      return new PlaneError(
        "deadline_exceeded",
        `the command ran past its timeoutMs (${timeoutMs ?? "?"} ms) and was killed`,
        504,
      );
    case "output_limit":
      return new PlaneError(
        "resource_exhausted",
        "output beyond the session's outputBytes limit (per stream, per command) was dropped",
        429,
      );
    case "memory_limit":
      return new PlaneError(
        "resource_exhausted",
        "the sandbox reached its memory limit (memoryMb) and the command was killed",
        429,
      );
    default:
      return null;
  }
}

/**
 * Subscribes to a command now; `skipPast` drops the output it already has.
 * Events wait in a queue for the stream: it holds at most what the command's
 * output caps let through (the session counts and cuts it before it gets here).
 */
export function subscribe(
  sessions: SessionManager,
  call: SandboxCall,
  commandId: string,
  skipPast: boolean,
) {
  const queue: BackgroundEvent[] = [];
  let wake: (() => void) | null = null;
  let live = !skipPast;
  const unsubscribe = sessions.followBackground(call.sessionId, call.userId, commandId, (ev) => {
    if (!live && ev.type !== "result") return;
    queue.push(ev);
    wake?.();
  });
  // follow() replays synchronously: everything before this line was old output.
  live = true;
  /** The next event, or null once `signal` aborts. */
  const next = async (signal: AbortSignal): Promise<BackgroundEvent | null> => {
    while (queue.length === 0 && !signal.aborted)
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        wake = done;
        signal.addEventListener("abort", done);
      });
    wake = null;
    return signal.aborted ? null : queue.shift()!;
  };
  return { next, unsubscribe };
}

/**
 * Sends a command's events until it ends (then its end event, and throws
 * the end's error if any) or the client goes away (the command lives on).
 */
export async function pump(
  events: ReturnType<typeof subscribe>,
  send: (msg: { event: ProcessEvent }) => Promise<void>,
  signal: AbortSignal,
  timeoutMs: number | null,
): Promise<void> {
  try {
    for (;;) {
      const ev = await events.next(signal);
      if (ev === null) return;
      if (ev.type === "result") {
        await send({ event: endEvent(ev.command) });
        const error = endError(ev.command, timeoutMs);
        if (error) throw error;
        return;
      }
      const data = Buffer.from(ev.data, "utf8").toString("base64");
      await send({
        event: { data: ev.type === "stdout" ? { stdout: data } : { stderr: data } },
      });
    }
  } finally {
    events.unsubscribe();
  }
}
