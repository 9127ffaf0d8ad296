/**
 * The event stream of one execution: `status`, `stdout` / `stderr` ({data})
 * as the program writes, `test` (a test-case run: each case's result as
 * soon as it is known, all of them again to a client that comes or
 * reconnects later: dedupe by `index`), then `result`. Each event's id is the position in
 * the output it leaves the client at, `<stdout chars>-<stderr chars>`: the
 * same whether the output comes live or from the stored result, so a client
 * that reconnects with `Last-Event-ID` gets only the rest, even after the run.
 *
 * The stream reads the execution's output log at its own pace and waits for
 * the socket between events: a client that does not read costs one socket
 * buffer, never a copy of the output (see sse.ts for when it is dropped).
 */
import type { Execution } from "../executions/execution.js";
import { WardenError } from "../errors.js";
import type { ExecutionResult } from "../contract/result.js";
import type { EventStream } from "./sse.js";

export interface OutputPosition {
  stdout: number;
  stderr: number;
}

const ID_PATTERN = /^(\d{1,12})-(\d{1,12})$/;

/** The position a `Last-Event-ID` names; a malformed one is refused before the stream opens. */
export function parsePosition(lastEventId: string | undefined): OutputPosition {
  if (lastEventId === undefined) return { stdout: 0, stderr: 0 };
  const match = ID_PATTERN.exec(lastEventId);
  if (!match)
    throw new WardenError(
      "INVALID_REQUEST",
      "Last-Event-ID: not an event id of this stream (<stdout chars>-<stderr chars>)",
    );
  return { stdout: Number(match[1]), stderr: Number(match[2]) };
}

/** Resolves when the execution has something new, or the client has gone. */
function changed(live: Execution, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      live.off("output", done);
      live.off("status", done);
      live.off("test", done);
      live.off("end", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    live.on("output", done);
    live.on("status", done);
    live.on("test", done);
    live.on("end", done);
    signal.addEventListener("abort", done);
  });
}

export async function streamExecution(
  stream: EventStream,
  from: OutputPosition,
  live: Execution | undefined,
  stored: ExecutionResult | null,
): Promise<void> {
  const at: OutputPosition = { stdout: 0, stderr: 0 };
  const id = (): string => `${at.stdout}-${at.stderr}`;
  /** Sends the part of `text` past the client's position; false once the client is gone. */
  const output = async (name: "stdout" | "stderr", text: string): Promise<boolean> => {
    const start = at[name];
    at[name] += text.length;
    const skip = Math.max(0, from[name] - start);
    if (skip >= text.length) return true;
    return stream.write(name, { data: skip > 0 ? text.slice(skip) : text }, id());
  };

  let sentTests = 0;
  if (live && !live.result) {
    let status: string | null = null;
    let next = 0;
    for (;;) {
      if (live.status !== status && !live.result) {
        status = live.status;
        if (!(await stream.write("status", { status }, id()))) return;
      }
      while (next < live.chunks.length) {
        const chunk = live.chunks[next++]!;
        if (!(await output(chunk.stream, chunk.data))) return;
      }
      while (sentTests < live.tests.length)
        if (!(await stream.write("test", live.tests[sentTests++]!, id()))) return;
      if (live.result) break;
      // Checked and waited on in one turn: nothing can slip in between.
      if (live.status === status && next === live.chunks.length && sentTests === live.tests.length)
        await changed(live, stream.signal);
      if (stream.signal.aborted) return;
    }
  }
  const result = live?.result ?? stored;
  if (result) {
    // Finished before this client came: the whole output, from its position on.
    if (!(await output("stdout", result.stdout.slice(at.stdout)))) return;
    if (!(await output("stderr", result.stderr.slice(at.stderr)))) return;
    // Cases the live loop has not sent (all of them, to a client that came after the end).
    for (const c of result.tests?.cases.slice(sentTests) ?? [])
      if (c.verdict !== "skipped" && !(await stream.write("test", c, id()))) return;
    if (!(await stream.write("result", result, id()))) return;
  }
  stream.end();
}
