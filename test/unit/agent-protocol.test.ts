/** The host's end of the agent protocol, without a sandbox: every rule a lying agent could break. */
import { describe, expect, it } from "vitest";
import type { WardenError } from "../../src/errors.js";
import {
  ArtifactPieces,
  FileBytes,
  Listing,
  RichResults,
} from "../../src/sessions/agent-answers.js";
import { AgentChannel, type PendingCall } from "../../src/sessions/agent-channel.js";
import {
  MAX_CELL_RESULT_BYTES,
  MAX_LIST_ENTRIES,
  MAX_RESULT_BYTES,
  ProtocolViolation,
  type AgentEvent,
  type AgentOp,
} from "../../src/sessions/agent-protocol.js";
import { OutputTally } from "../../src/sessions/output-cap.js";
import { ByteBudget, OutputLog, cutUtf8 } from "../../src/sessions/output-cap.js";

function channel(maxLineChars = 1000) {
  const seen: { violation: string | null; ready: number } = { violation: null, ready: 0 };
  const ch = new AgentChannel({
    maxLineChars,
    onReady: () => seen.ready++,
    onViolation: (reason) => (seen.violation = reason),
  });
  const call = (id: number, op: AgentOp, onEvent: (e: AgentEvent) => void = () => undefined) => {
    const got: { events: AgentEvent[]; final?: AgentEvent; error?: WardenError } = { events: [] };
    const pending: PendingCall = {
      op,
      onEvent: (e) => {
        got.events.push(e);
        onEvent(e);
      },
      resolve: (e) => (got.final = e),
      reject: (e) => (got.error = e),
    };
    ch.expect(id, pending);
    return got;
  };
  const line = (o: unknown) => ch.receive(`${JSON.stringify(o)}\n`);
  return { ch, seen, call, line };
}

describe("agent channel", () => {
  it("passes a well-formed exchange, in any split of the text", () => {
    const { ch, seen, call } = channel();
    const got = call(1, "exec");
    const text =
      '{"type":"ready"}\n{"id":1,"type":"stdout","data":"hi"}\n' +
      '{"id":1,"type":"exit","exitCode":0,"signal":null,"timedOut":false,"truncated":false,"durationMs":3}\n';
    for (const c of text) ch.receive(c);
    expect(seen).toEqual({ violation: null, ready: 1 });
    expect(got.events).toHaveLength(1);
    expect(got.final).toMatchObject({ type: "exit", exitCode: 0 });
  });

  it.each([
    ["a line over the limit, without waiting for its end", "x".repeat(1001), /longer than 1000/],
    ["a line that is not JSON", "{nope\n", /not JSON/],
    ["a message with an unknown type", '{"id":1,"type":"surprise"}\n', /schema/],
    ["a message with an extra field", '{"id":1,"type":"ok","extra":1}\n', /schema/],
    ["a negative id", '{"id":-1,"type":"ok"}\n', /schema/],
    ["an answer to an id that is not pending", '{"id":7,"type":"ok"}\n', /7, which is not pending/],
    [
      "an event its request cannot have",
      '{"id":1,"type":"file","size":3}\n',
      /file event answering a exec/,
    ],
    ["a second ready", '{"type":"ready"}\n{"type":"ready"}\n', /second ready/],
  ])("ends the session on %s", (_what, text, reason) => {
    const { ch, seen, call } = channel();
    const got = call(1, "exec");
    ch.receive(text);
    expect(seen.violation).toMatch(reason);
    expect(got.error?.message).toMatch(/agent broke the protocol/);
    // Deaf from then on: nothing more is parsed or delivered.
    ch.receive(
      '{"id":1,"type":"exit","exitCode":0,"signal":null,"timedOut":false,"truncated":false,"durationMs":1}\n',
    );
    expect(got.final).toBeUndefined();
  });

  it("never resolves a call twice (an answer after the end is a violation)", () => {
    const { seen, call, line } = channel();
    const got = call(1, "write");
    line({ id: 1, type: "ok" });
    line({ id: 1, type: "ok" });
    expect(got.final).toMatchObject({ type: "ok" });
    expect(seen.violation).toMatch(/not pending/);
  });
});

describe("assembling answers on the host's own count", () => {
  const b64 = (n: number) => Buffer.alloc(n, "a").toString("base64");

  it("a file read stops at maxBytes whatever size is claimed", () => {
    const { seen, call, line } = channel(10_000);
    const file = new FileBytes(100);
    const got = call(1, "read", file.onEvent);
    line({ id: 1, type: "data", data: b64(60) });
    line({ id: 1, type: "data", data: b64(60) });
    line({ id: 1, type: "file", size: 3 });
    expect(seen.violation).toMatch(/more than 100 \(maxFileBytes\)/);
    expect(got.final).toBeUndefined();
  });

  it("a listing is bounded in entries", () => {
    const listing = new Listing();
    const batch = Array.from({ length: 1000 }, (_, i) => ({
      name: `f${i}`,
      type: "file" as const,
      size: 0,
      mtime: null,
    }));
    for (let i = 0; i < MAX_LIST_ENTRIES / 1000; i++)
      listing.onEvent({ id: 1, type: "entries", entries: batch });
    expect(() => listing.onEvent({ id: 1, type: "entries", entries: batch })).toThrow(
      ProtocolViolation,
    );
  });

  it("artifacts: size, count and total are counted, the claimed size is ignored", () => {
    const limits = { maxBytes: 100, maxCount: 2, maxTotalBytes: 150, allowedTypes: [] };
    const ok = new ArtifactPieces(limits);
    ok.onEvent({ id: 1, type: "artifact", name: "a", size: 999_999, read: true });
    ok.onEvent({ id: 1, type: "data", data: b64(80) });
    ok.onEvent({ id: 1, type: "artifact", name: "b", size: 5, read: false });
    expect(ok.candidates()).toEqual([
      { name: "a", size: 80, problem: undefined, content: Buffer.alloc(80, "a") },
      { name: "b", size: 5, problem: undefined },
    ]);
    const big = new ArtifactPieces(limits);
    big.onEvent({ id: 1, type: "artifact", name: "a", size: 1, read: true });
    expect(() => big.onEvent({ id: 1, type: "data", data: b64(101) })).toThrow(/maxArtifactSizeMB/);
    const many = new ArtifactPieces(limits);
    for (const name of ["a", "b"])
      many.onEvent({ id: 1, type: "artifact", name, size: 0, read: true });
    expect(() => many.onEvent({ id: 1, type: "artifact", name: "c", size: 0, read: true })).toThrow(
      /maxArtifactsPerExecution/,
    );
    const total = new ArtifactPieces(limits);
    total.onEvent({ id: 1, type: "artifact", name: "a", size: 0, read: true });
    total.onEvent({ id: 1, type: "data", data: b64(100) });
    total.onEvent({ id: 1, type: "artifact", name: "b", size: 0, read: true });
    expect(() => total.onEvent({ id: 1, type: "data", data: b64(60) })).toThrow(
      /maxArtifactsTotalMB/,
    );
    const orphan = new ArtifactPieces(limits);
    orphan.onEvent({ id: 1, type: "artifact", name: "a", size: 0, read: false });
    expect(() => orphan.onEvent({ id: 1, type: "data", data: b64(1) })).toThrow(/without/);
  });

  it("rich results are bounded per result and per cell", () => {
    const piece = "r".repeat(1024 * 1024);
    const one = new RichResults();
    one.onEvent({ id: 1, type: "result", isMainResult: true });
    expect(() => {
      for (let n = 0; n <= MAX_RESULT_BYTES / piece.length; n++)
        one.onEvent({ id: 1, type: "mime", mime: "text/plain", data: piece });
    }).toThrow(/one of more than/);
    const cell = new RichResults();
    expect(() => {
      for (let n = 0; n <= MAX_CELL_RESULT_BYTES / piece.length; n++) {
        cell.onEvent({ id: 1, type: "result", isMainResult: false });
        cell.onEvent({ id: 1, type: "mime", mime: "text/plain", data: piece });
      }
    }).toThrow(/in a cell/);
    const fine = new RichResults();
    fine.onEvent({ id: 1, type: "result", isMainResult: true });
    fine.onEvent({ id: 1, type: "mime", mime: "text/plain", data: "4" });
    fine.onEvent({ id: 1, type: "mime", mime: "text/plain", data: "2" });
    expect(fine.list()).toEqual([{ data: { "text/plain": "42" }, isMainResult: true }]);
  });
});

describe("output caps", () => {
  it("cuts at whole UTF-8 characters", () => {
    expect(cutUtf8("aé€", 4)).toBe("aé");
    expect(cutUtf8("aé€", 6)).toBe("aé€");
  });

  it("counts bytes, not characters, and keeps only what fits", () => {
    const t = new OutputTally(5);
    expect(t.take("stdout", "éé")).toBe("éé");
    expect(t.take("stdout", "éé")).toBe("");
    expect(t.bytes.stdout).toBe(4);
    expect(t.truncated).toEqual({ stdout: true, stderr: false });
  });

  it("a log keeps the order, its cap per stream, the shared budget and few pieces", () => {
    const budget = new ByteBudget(30);
    const log = new OutputLog(20, budget);
    log.push("stdout", "a".repeat(15));
    log.push("stderr", "b".repeat(10));
    log.push("stdout", "c".repeat(10));
    expect(log.replay()).toEqual([
      { stream: "stdout", data: "a".repeat(15) },
      { stream: "stderr", data: "b".repeat(10) },
      { stream: "stdout", data: "c".repeat(5) },
    ]);
    expect(budget.left).toBe(0);
    expect(log.truncated).toEqual({ stdout: true, stderr: false });
    // Alternating one byte at a time cannot make a piece per byte.
    const flip = new OutputLog(1 << 20, new ByteBudget(1 << 30));
    for (let i = 0; i < 100_000; i++) flip.push(i % 2 ? "stderr" : "stdout", "x");
    expect(flip.replay().length).toBeLessThanOrEqual(4096);
    expect(flip.truncated.stdout || flip.truncated.stderr).toBe(true);
  });
});
