/** Rich results as the host accepts them: MIME types of Jupyter's shape only, bounded metadata. */
import { describe, expect, it } from "vitest";
import { RichResults } from "../../src/sessions/agent-answers.js";
import { AgentChannel } from "../../src/sessions/agent-channel.js";
import { AgentEventSchema, MAX_METADATA_CHARS } from "../../src/sessions/agent-protocol.js";

const mime = (type: string) =>
  AgentEventSchema.safeParse({ id: 1, type: "mime", mime: type, data: "x" });
const result = (metadata: unknown) =>
  AgentEventSchema.safeParse({ id: 1, type: "result", isMainResult: false, metadata });

describe("rich results from a kernel", () => {
  it("accepts MIME types as Jupyter writes them, and nothing else", () => {
    for (const ok of [
      "text/plain",
      "image/svg+xml",
      "application/vnd.plotly.v1+json",
      "text/x-python",
    ])
      expect(mime(ok).success, ok).toBe(true);
    for (const bad of [
      "Text/HTML",
      "text/html\r\nX-Injected: 1",
      "text/html; charset=utf-8",
      "../../etc/passwd",
      "text",
      "/plain",
      `text/${"a".repeat(100)}`,
      "",
    ])
      expect(mime(bad).success, bad).toBe(false);
  });

  it("takes metadata as a small JSON object only", () => {
    expect(result({ "image/png": { width: 10 } }).success).toBe(true);
    expect(result(undefined).success).toBe(true);
    expect(result([1, 2]).success).toBe(false);
    expect(result("text").success).toBe(false);
    expect(result({ k: "x".repeat(MAX_METADATA_CHARS) }).success).toBe(false);
  });

  it("keeps a result's metadata beside its data", () => {
    const results = new RichResults();
    results.onEvent({
      id: 1,
      type: "result",
      isMainResult: false,
      metadata: { "image/png": { width: 4 } },
    });
    results.onEvent({ id: 1, type: "mime", mime: "image/png", data: "AAAA" });
    results.onEvent({ id: 1, type: "result", isMainResult: true });
    results.onEvent({ id: 1, type: "mime", mime: "text/plain", data: "1" });
    expect(results.list()).toEqual([
      {
        data: { "image/png": "AAAA" },
        isMainResult: false,
        metadata: { "image/png": { width: 4 } },
      },
      { data: { "text/plain": "1" }, isMainResult: true },
    ]);
  });

  it("a deeply nested metadata line is a violation, not a crash of Warden", () => {
    // 1 MiB of nesting parses, but anything that walks it recursively overflows the stack.
    const depth = 400_000;
    const line = `{"id":1,"type":"result","isMainResult":false,"metadata":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}\n`;
    let violation: string | null = null;
    const ch = new AgentChannel({
      maxLineChars: 1024 * 1024,
      onReady: () => undefined,
      onViolation: (reason) => (violation = reason),
    });
    ch.expect(1, {
      op: "run",
      onEvent: () => undefined,
      resolve: () => undefined,
      reject: () => undefined,
    });
    expect(() => ch.receive(line)).not.toThrow();
    expect(violation).toMatch(/schema/);
  });
});
