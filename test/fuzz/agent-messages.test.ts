/**
 * Fuzz tier, agent messages: a few thousand agent stdout streams from a
 * seeded PRNG (FUZZ_SEED replays a run), each well-formed answers to pending
 * requests with at most one hostile piece spliced in, turned into bytes, cut
 * at random chunk boundaries (inside multibyte characters too) and fed to the
 * host's real path without a sandbox: CappedOutput (bytes → text) → AgentChannel
 * → the answer assemblers. Nothing may throw out of the channel; a hostile
 * piece is always a violation, reported once, that fails every pending call
 * and lets no later event through; a clean stream arrives intact.
 */
import { describe, expect, it } from "vitest";
import type { WardenError } from "../../src/errors.js";
import { CappedOutput } from "../../src/sandbox/output.js";
import {
  ArtifactPieces,
  FileBytes,
  Listing,
  RichResults,
} from "../../src/sessions/agent-answers.js";
import { AgentChannel } from "../../src/sessions/agent-channel.js";
import { type AgentEvent, type AgentOp } from "../../src/sessions/agent-protocol.js";
import { OutputTally } from "../../src/sessions/output-cap.js";
import { fuzzSeed } from "../helpers/fuzz.js";
import { Fuzz } from "./generators.js";
import { hostile, validAnswer, type Call } from "./agent-streams.js";

const SEED = fuzzSeed(20_251_130);
const CASES = 3000;
const OPS: AgentOp[] = ["exec", "run", "read", "list", "collect", "write"];

interface Outcome {
  violations: string[];
  afterViolation: number;
  calls: {
    op: AgentOp;
    stdout: string;
    expected: string;
    settled: "resolved" | "rejected" | null;
    error?: WardenError;
  }[];
  pending: number;
}

/** One stream through the host's path; returns what each side saw. */
function runCase(f: Fuzz, maxLineChars: number): { outcome: Outcome; breach: boolean } {
  const outcome: Outcome = { violations: [], afterViolation: 0, calls: [], pending: 0 };
  const channel = new AgentChannel({
    maxLineChars,
    onReady: () => undefined,
    onViolation: (reason) => outcome.violations.push(reason),
  });
  const seen = (): void => {
    if (outcome.violations.length > 0) outcome.afterViolation++;
  };
  const calls: Call[] = [];
  for (let id = 1, n = 1 + f.int(3); id <= n; id++) {
    const op = f.pick(OPS);
    const record: Outcome["calls"][number] = { op, stdout: "", expected: "", settled: null };
    outcome.calls.push(record);
    // The same assemblers a session uses, with small limits so the fuzzer can pass them.
    const tally = new OutputTally(1 << 20);
    const file = new FileBytes(2000);
    const listing = new Listing();
    const artifacts = new ArtifactPieces({
      maxBytes: 1000,
      maxCount: 3,
      maxTotalBytes: 2000,
      allowedTypes: [],
    });
    const rich = new RichResults();
    channel.expect(id, {
      op,
      onEvent: (event: AgentEvent) => {
        seen();
        if (event.type === "stdout") record.stdout += tally.take("stdout", event.data);
        if (op === "read") file.onEvent(event);
        if (op === "list") listing.onEvent(event);
        if (op === "collect") artifacts.onEvent(event);
        if (op === "run") rich.onEvent(event);
      },
      resolve: () => {
        seen();
        record.settled = "resolved";
      },
      reject: (error) => {
        record.settled = "rejected";
        record.error = error;
      },
    });
    calls.push({ id, op, record });
  }

  const lines: Buffer[] = [Buffer.from('{"type":"ready"}\n')];
  const answers = calls.map((call) => validAnswer(f, call, maxLineChars));
  // Interleave the calls' answers, each in its own order.
  while (answers.some((a) => a.length > 0)) {
    const a = f.pick(answers.filter((x) => x.length > 0));
    lines.push(a.shift()!);
  }
  const breach = f.chance(0.75);
  if (breach) lines.splice(1 + f.int(lines.length), 0, ...hostile(f, calls, maxLineChars));

  const bytes = Buffer.concat(lines);
  const output = new CappedOutput(
    "stdout",
    Number.MAX_SAFE_INTEGER,
    (c) => channel.receive(c.data),
    false,
  );
  for (let at = 0; at < bytes.length;) {
    const size = 1 + f.int(f.pick([3, 17, 600, 5000]));
    output.push(bytes.subarray(at, at + size)); // must not throw, whatever the bytes
    at += size;
  }
  output.text();
  outcome.pending = channel.pending;
  return { outcome, breach };
}

describe(`agent messages fuzz (FUZZ_SEED=${SEED})`, () => {
  it(`${CASES} streams: never a throw; every hostile piece ends the session, nothing else does`, () => {
    const f = new Fuzz(SEED);
    const reasons = new Map<string, number>();
    for (let i = 0; i < CASES; i++) {
      const maxLine = f.pick([4096, 4096, 1 << 20]);
      const { outcome, breach } = runCase(f, maxLine);
      const where = `case ${i} (FUZZ_SEED=${SEED})`;
      expect(outcome.violations.length, `${where}: ${outcome.violations.join("; ")}`).toBe(
        breach ? 1 : 0,
      );
      expect(outcome.afterViolation, where).toBe(0);
      if (breach) {
        const reason = outcome.violations[0]!.replace(/[\d]+/g, "N").slice(0, 40);
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        // Nothing is left waiting: each call ended, and the unanswered ones with the violation.
        expect(outcome.pending, where).toBe(0);
        for (const call of outcome.calls) {
          expect(call.settled, where).not.toBeNull();
          if (call.settled === "rejected")
            expect(call.error?.message, where).toMatch(/broke the protocol/);
        }
      } else {
        for (const call of outcome.calls) {
          expect(call.settled, where).toBe("resolved");
          expect(call.stdout, `${where}: ${call.op} stdout`).toBe(call.expected);
        }
      }
    }
    // Prototype pollution keys were parsed and refused, never merged in.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // The fuzzer reached many different refusals, not one over and over.
    expect(reasons.size).toBeGreaterThan(10);
  });

  it("a line that never ends costs the host at most the line limit", () => {
    let violation = "";
    const channel = new AgentChannel({
      onReady: () => undefined,
      onViolation: (r) => (violation = r),
    });
    const output = new CappedOutput(
      "stdout",
      Number.MAX_SAFE_INTEGER,
      (c) => channel.receive(c.data),
      false,
    );
    const chunk = Buffer.alloc(64 * 1024, "é"); // multibyte, split at every chunk edge
    const before = process.memoryUsage().heapUsed;
    for (let sent = 0; sent < 256 * 1024 * 1024; sent += chunk.length) output.push(chunk);
    const grown = process.memoryUsage().heapUsed - before;
    expect(violation).toMatch(/line longer than/);
    // 256 MiB went in; what the host kept is bounded by the 1 MiB line limit, plus garbage.
    expect(grown).toBeLessThan(64 * 1024 * 1024);
  });
});
