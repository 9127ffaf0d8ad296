/**
 * File watches: inotify runs inside the session (the agent's `watch` op,
 * fs.watch), which reports changes coalesced, at most one per path every
 * 100 ms and a bounded number per flush. Each event is parsed strictly on
 * the host (agent-protocol.ts); what is sent on is only the checked fields.
 * A watch ends when its client stops it or the session ends.
 */
import { WardenError } from "../errors.js";
import { checkWorkspacePath } from "../sandbox/workspace.js";
import type { WatchEvent } from "../contract/session.js";
import type { LiveSession } from "./session.js";

export type { WatchEvent } from "../contract/session.js";

/** `/workspace/dir`, `dir`, `/workspace` or `.` → the agent's relative path ("." for the root). */
export function watchPath(path: string): string {
  const rel = path === "/workspace" ? "." : path.replace(/^\/workspace\//, "");
  if (rel === "" || rel === ".") return ".";
  return checkWorkspacePath(rel, "path");
}

export async function watchDirectory(
  s: LiveSession,
  maxWatches: number,
  o: { path: string; recursive: boolean },
  onEvent: (event: WatchEvent) => void,
  onEnd: (error: Error | null) => void,
): Promise<() => void> {
  const path = watchPath(o.path);
  if (s.watches >= maxWatches)
    throw new WardenError(
      "QUOTA_EXCEEDED",
      `watch: ${s.watches} watches are open on this session (sessions.maxWatches ${maxWatches})`,
    );
  s.watches++;
  let open = true;
  const close = (): void => {
    if (!open) return;
    open = false;
    s.watches--;
  };
  // A background request: an open watch does not keep the session from idling out.
  let started!: () => void;
  const watching = new Promise<null>((resolve) => (started = () => resolve(null)));
  const call = s.sandbox.send(
    { op: "watch", path, recursive: o.recursive },
    (event) => {
      if (event.type === "watching") started();
      else if (event.type === "change")
        onEvent({ kind: event.kind, path: event.path, type: event.entry });
    },
    true,
  );
  const settled = call.done.then(
    () => null,
    (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
  );
  // The agent says `watching` once inotify is set, or refuses the path at once.
  const refused = await Promise.race([watching, settled.then((e) => e ?? new Error("ended"))]);
  if (refused) {
    close();
    throw refused;
  }
  void settled.then((error) => {
    close();
    onEnd(error);
  });
  return () => {
    if (!open) return;
    // The agent closes the watcher and ends the request with its final `ok`.
    s.sandbox.request({ op: "cancel", target: call.id }).catch(() => undefined);
  };
}
