import { StringDecoder } from "node:string_decoder";
import type { OutputChunk, OutputStream } from "./types.js";

/**
 * Collects one stream up to a byte cap. Past the cap nothing more is kept,
 * so a program that prints a gigabyte costs Warden `capBytes`, not a gigabyte.
 */
export class CappedOutput {
  private readonly parts: string[] = [];
  private readonly decoder = new StringDecoder("utf8");
  bytes = 0;
  truncated = false;

  constructor(
    readonly stream: OutputStream,
    private readonly capBytes: number,
    private readonly onChunk?: (chunk: OutputChunk) => void,
    /** Keep the text for `text()`; off for long-lived programs whose output is only streamed. */
    private readonly retain = true,
  ) {}

  /** Returns false once the cap is exceeded. */
  push(data: Buffer): boolean {
    if (this.truncated) return false;
    const room = this.capBytes - this.bytes;
    const kept = data.length > room ? data.subarray(0, room) : data;
    this.bytes += kept.length;
    this.emit(this.decoder.write(kept));
    if (data.length > room) {
      this.truncated = true;
      return false;
    }
    return true;
  }

  private emit(text: string): void {
    if (!text) return;
    if (this.retain) this.parts.push(text);
    this.onChunk?.({ stream: this.stream, data: text });
  }

  text(): string {
    this.emit(this.decoder.end());
    return this.parts.join("");
  }
}
