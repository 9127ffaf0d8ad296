/**
 * Output of session commands and cells, counted by the host in the bytes it
 * actually receives (UTF-8 of the decoded text), per stream, and cut at the
 * limit. The agent cuts too, but the agent is on the sandbox's side: what it
 * claims about truncation is never what keeps Warden's memory bounded.
 */
import { StringDecoder } from "node:string_decoder";
import type { Truncated } from "../contract/result.js";
import type { OutputChunk, OutputStream } from "../sandbox/types.js";

/** The longest prefix of `text` that is at most `bytes` bytes of UTF-8 (whole characters). */
export function cutUtf8(text: string, bytes: number): string {
  if (bytes <= 0) return "";
  return new StringDecoder("utf8").write(Buffer.from(text, "utf8").subarray(0, bytes));
}

/** Many tiny pieces cost more than their bytes: join them now and then. */
const JOIN_EVERY = 1024;

function append(parts: string[], text: string): void {
  parts.push(text);
  if (parts.length >= JOIN_EVERY) parts.splice(0, parts.length, parts.join(""));
}

/**
 * Folds the agent's own "truncated" into what the host counted: believed only
 * for a stream whose received bytes did reach the limit (the agent stops
 * exactly there), so a lying agent can mislabel nothing else.
 */
function settleTruncated(
  counted: { bytes: Record<OutputStream, number>; truncated: Truncated },
  capBytes: number,
  agentSaysTruncated: boolean,
): Truncated {
  if (agentSaysTruncated)
    for (const stream of ["stdout", "stderr"] as const)
      if (counted.bytes[stream] >= capBytes) counted.truncated[stream] = true;
  return { ...counted.truncated };
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

  /** See settleTruncated. */
  settle(agentSaysTruncated: boolean): Truncated {
    return settleTruncated(this, this.cap, agentSaysTruncated);
  }
}

/** Bytes that several logs draw from (all background output of one session). */
export class ByteBudget {
  constructor(public left: number) {}
}

/**
 * Both streams of a long-lived command in their order, for replay to a
 * client that attaches late: each stream up to `capBytes`, all of it within a
 * shared budget, and at most `capBytes / 256` switches between streams (each
 * switch is a separate piece in memory; 1-byte alternations must not cost
 * 100 bytes each).
 */
export class OutputLog {
  private readonly chunks: { stream: OutputStream; parts: string[] }[] = [];
  readonly bytes = { stdout: 0, stderr: 0 };
  private readonly maxChunks: number;
  /** Bytes kept (drawn from the budget). */
  retained = 0;
  readonly truncated = { stdout: false, stderr: false };

  constructor(
    private readonly capBytes: number,
    private readonly budget: ByteBudget,
  ) {
    this.maxChunks = Math.max(64, Math.floor(capBytes / 256));
  }

  push(stream: OutputStream, data: string): string {
    if (data === "") return "";
    let last = this.chunks.at(-1);
    if (last?.stream !== stream) {
      if (this.chunks.length >= this.maxChunks) {
        this.truncated[stream] = true;
        return "";
      }
      last = undefined;
    }
    const room = Math.min(this.capBytes - this.bytes[stream], this.budget.left);
    let kept = data;
    let size = Buffer.byteLength(data);
    if (size > room) {
      kept = cutUtf8(data, room);
      size = Buffer.byteLength(kept);
      this.truncated[stream] = true;
    }
    if (!kept) return "";
    this.bytes[stream] += size;
    this.retained += size;
    this.budget.left -= size;
    if (!last) this.chunks.push((last = { stream, parts: [] }));
    append(last.parts, kept);
    return kept;
  }

  /** See settleTruncated. */
  settle(agentSaysTruncated: boolean): Truncated {
    return settleTruncated(this, this.capBytes, agentSaysTruncated);
  }

  /** The pieces in order, for replay. */
  replay(): OutputChunk[] {
    return this.chunks.map((c) => ({ stream: c.stream, data: c.parts.join("") }));
  }

  text(): { stdout: string; stderr: string } {
    const out = { stdout: "", stderr: "" };
    for (const c of this.replay()) out[c.stream] += c.data;
    return out;
  }
}
