/**
 * One long-lived Python analyser: analyze.py --serve in a real sandbox with the
 * same limits as a cold analysis (memory, pids, CPU, disk, no network), started
 * once and then asked one request at a time over stdin/stdout. The program is
 * on the sandbox's side of the wall — it reads hostile source and a parser bug
 * could hand it to that source — so every answer is counted as it arrives,
 * capped, schema-checked, and must answer the one request in flight; anything
 * else (garbage, an oversized or unsolicited line, silence past the deadline,
 * an exit) breaks this analyser for good and the pool starts a fresh one.
 */
import { PassThrough } from "node:stream";
import { expandTemplate, privateMountsFor, type RuntimeRegistry } from "../runtimes/registry.js";
import type { Box } from "../sandbox/box.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { RunResult, SandboxLimits } from "../sandbox/types.js";
import { MAX_ANSWER_BYTES, parseAnalyserOutput, type AnalyserOutput } from "./analyser-output.js";
import type { SourceUnit } from "./findings.js";
import { analyserRequest, type RuleSet } from "./python.js";

/** Why an analyser was given up (also the `reason` label of the restart counter). */
export type WarmFailure = "crash" | "timeout" | "garbled" | "oversized" | "unsolicited";

export class WarmAnalyserError extends Error {
  constructor(readonly reason: WarmFailure) {
    super(`warm analyser failed: ${reason}`);
  }
}

export interface WarmAnalyserOptions {
  host: SandboxHost;
  registry: RuntimeRegistry;
  rules: RuleSet;
  /** The limits of one cold analysis; the wall-clock one becomes the process's lifetime. */
  limits: SandboxLimits;
  /** Whole life of the process, after which the kernel side ends it whatever it does. */
  lifetimeMs: number;
  /** Deadline to print its ready line. */
  startTimeoutMs: number;
  /** Bound on all it may print in its life (requests it may serve × the answer cap). */
  maxRequests: number;
}

const READY = '{"ready": true}';

interface Pending {
  units: readonly SourceUnit[];
  resolve: (output: AnalyserOutput) => void;
  reject: (error: WarmAnalyserError) => void;
}

export class WarmAnalyser {
  readonly startedAt = Date.now();
  /** Requests answered so far. */
  requests = 0;
  /** Failure that ended it; null while it is usable. */
  broken: WarmFailure | null = null;
  /** Set once it has ended, with how. */
  result: RunResult | null = null;
  readonly ended: Promise<RunResult>;
  private readonly input = new PassThrough();
  private readonly stop = new AbortController();
  private pending: Pending | null = null;
  private ready: Pending | null = null;
  private line: string[] = [];
  private lineBytes = 0;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly box: Box,
    o: WarmAnalyserOptions,
  ) {
    const runtime = o.registry.resolve("python");
    const vars = { ...runtime.tools, file: "analyze.py", memoryMb: String(o.limits.memoryMb) };
    this.ended = box
      .run({
        argv: [...expandTemplate(runtime.definition.run, vars), "--serve"],
        env: { ...runtime.definition.env },
        mounts: privateMountsFor(runtime, (name) => o.host.privateFile(name)),
        stdin: this.input,
        retainOutput: false,
        limits: {
          ...o.limits,
          timeoutMs: o.lifetimeMs,
          killGraceMs: 0,
          outputBytes: (o.maxRequests + 2) * (MAX_ANSWER_BYTES + 1),
        },
        signal: this.stop.signal,
        onOutput: (chunk) => {
          if (chunk.stream === "stdout") this.receive(chunk.data);
        },
      })
      .then(
        (result) => {
          this.result = result;
          this.fail("crash");
          return result;
        },
        (error: unknown) => {
          this.fail("crash");
          throw error;
        },
      );
    // close() reads the outcome; this only keeps a failed start from being unhandled.
    this.ended.catch(() => undefined);
    // A write racing the end of the process must not become an unhandled stream error.
    this.input.on("error", () => undefined);
  }

  /** Starts one and waits for its ready line; throws (and cleans up) if it does not come. */
  static async start(o: WarmAnalyserOptions): Promise<WarmAnalyser> {
    const box = await o.host.prepare({
      diskMb: o.limits.diskMb,
      files: [{ path: "analyze.py", content: o.rules.source }],
    });
    let analyser: WarmAnalyser;
    try {
      analyser = new WarmAnalyser(box, o);
    } catch (error) {
      await box.destroy();
      throw error;
    }
    try {
      await analyser.expect(null, o.startTimeoutMs);
      return analyser;
    } catch (error) {
      await analyser.close();
      throw error;
    }
  }

  /** Which box and host uid it runs in, for audit and leak checks. */
  get sandbox(): { id: string; uid: number } {
    return { id: this.box.id, uid: this.box.uid };
  }

  get busy(): boolean {
    return this.pending !== null;
  }

  /** Analyses units; rejects with a WarmAnalyserError (the analyser is then broken). */
  analyse(units: readonly SourceUnit[], timeoutMs: number): Promise<AnalyserOutput> {
    if (this.broken) return Promise.reject(new WarmAnalyserError(this.broken));
    if (this.pending) return Promise.reject(new WarmAnalyserError("unsolicited"));
    const done = this.expect(units, timeoutMs);
    const body = Buffer.from(analyserRequest(units));
    this.input.write(`${body.length}\n`);
    this.input.write(body);
    return done.then((output) => {
      this.requests++;
      return output;
    });
  }

  /** Kills the process and removes its box. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.broken ??= "crash";
      this.stop.abort();
      this.input.end();
      await this.ended.catch(() => undefined);
      await this.box.destroy();
    })();
    return this.closing;
  }

  /** Waits for the ready line (units null) or the answer to units. */
  private expect(units: readonly SourceUnit[] | null, timeoutMs: number): Promise<AnalyserOutput> {
    return new Promise<AnalyserOutput>((resolve, reject) => {
      const timer = setTimeout(() => this.fail("timeout"), timeoutMs);
      const slot: Pending = {
        units: units ?? [],
        resolve: (output) => {
          clearTimeout(timer);
          resolve(output);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      if (units === null) this.ready = slot;
      else this.pending = slot;
      // It may have ended already (an exit before a request was sent).
      if (this.broken) this.fail(this.broken);
    });
  }

  /** Output bytes as they arrive: lines counted and capped before they are kept. */
  private receive(data: string): void {
    let rest = data;
    while (!this.broken && rest.length > 0) {
      const newline = rest.indexOf("\n");
      const part = newline < 0 ? rest : rest.slice(0, newline);
      this.lineBytes += Buffer.byteLength(part);
      if (this.lineBytes > MAX_ANSWER_BYTES) return this.fail("oversized");
      this.line.push(part);
      if (newline < 0) return;
      const text = this.line.join("");
      this.line = [];
      this.lineBytes = 0;
      rest = rest.slice(newline + 1);
      this.answer(text);
    }
  }

  private answer(text: string): void {
    const ready = this.ready;
    if (ready) {
      if (text !== READY) return this.fail("garbled");
      this.ready = null;
      return ready.resolve({ findings: [], errors: [] });
    }
    const pending = this.pending;
    if (!pending) return this.fail("unsolicited");
    const output = parseAnalyserOutput(text, pending.units);
    if (!output) return this.fail("garbled");
    this.pending = null;
    pending.resolve(output);
  }

  /** Breaks the analyser: whatever waits fails with the first reason, and the sandbox is stopped. */
  private fail(reason: WarmFailure): void {
    this.broken ??= reason;
    const waiting = [this.ready, this.pending];
    this.ready = this.pending = null;
    for (const w of waiting) w?.reject(new WarmAnalyserError(this.broken));
    this.stop.abort();
    this.input.end();
  }
}
