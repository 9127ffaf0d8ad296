/**
 * The analysis cache's bounds and keys, and the strict reading of an
 * analyser's answer: pure code, no sandbox.
 */
import { describe, expect, it } from "vitest";
import { AnalysisCache, analysisKey, type CacheKeyInput } from "../../src/policy/analysis-cache.js";
import { parseAnalyserOutput, MAX_ANSWER_BYTES } from "../../src/policy/analyser-output.js";
import type { Finding } from "../../src/contract/policy.js";

const finding = (message = "m"): Finding => ({
  ruleId: "process-exec",
  severity: "high",
  message,
  line: 1,
  column: 1,
  cell: null,
});
const base: CacheKeyInput = {
  ruleVersion: "v1",
  userId: "u",
  language: "python",
  units: [{ cell: 0, source: "x = 1", kind: "program" }],
};

describe("analysisKey", () => {
  it("changes with each thing a report depends on", () => {
    const key = analysisKey(base);
    expect(analysisKey({ ...base })).toBe(key);
    for (const other of [
      { ...base, ruleVersion: "v2" },
      { ...base, userId: "v" },
      { ...base, language: "javascript" },
      { ...base, units: [{ cell: 1, source: "x = 1", kind: "program" as const }] },
      { ...base, units: [{ cell: 0, source: "x = 1", kind: "file" as const }] },
      { ...base, units: [{ cell: 0, source: "x = 2", kind: "program" as const }] },
      // Parts must not run into each other: "a"+"b,c" vs "a,b"+"c".
      {
        ...base,
        units: [
          { cell: 0, source: "x", kind: "file" as const },
          { cell: 1, source: "= 1", kind: "file" as const },
        ],
      },
      // Distinct lone surrogates are distinct sources.
      { ...base, units: [{ cell: 0, source: "\ud800", kind: "program" as const }] },
    ])
      expect(analysisKey(other)).not.toBe(key);
    const a = analysisKey({ ...base, units: [{ cell: 0, source: "\ud800" }] });
    const b = analysisKey({ ...base, units: [{ cell: 0, source: "\ud801" }] });
    expect(a).not.toBe(b);
  });
});

describe("AnalysisCache", () => {
  it("hits, and hands out copies the caller may change", () => {
    const cache = new AnalysisCache({ maxEntries: 10, maxBytes: 1 << 20 });
    cache.set("k", { findings: [finding()], complete: true });
    const hit = cache.get("k")!;
    hit.findings[0]!.message = "changed";
    expect(cache.get("k")!.findings[0]!.message).toBe("m");
    expect(cache.get("nope")).toBeUndefined();
  });

  it("never keeps an incomplete analysis (a crash, a timeout)", () => {
    const cache = new AnalysisCache({ maxEntries: 10, maxBytes: 1 << 20 });
    cache.set("k", { findings: [finding()], complete: false });
    expect(cache.get("k")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("holds its entry bound, evicting the least recently used", () => {
    const cache = new AnalysisCache({ maxEntries: 3, maxBytes: 1 << 20 });
    for (const k of ["a", "b", "c"]) cache.set(k, { findings: [], complete: true });
    cache.get("a"); // a is now the most recent: b goes first
    cache.set("d", { findings: [], complete: true });
    expect(cache.size).toBe(3);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBeDefined();
  });

  it("holds its byte bound against a flood of distinct, large reports", () => {
    const maxBytes = 64 * 1024;
    const cache = new AnalysisCache({ maxEntries: 1_000_000, maxBytes });
    const big = Array.from({ length: 20 }, () => finding("x".repeat(300)));
    for (let i = 0; i < 10_000; i++) {
      cache.set(`k${i}`, { findings: big, complete: true });
      expect(cache.bytes).toBeLessThanOrEqual(maxBytes);
    }
    expect(cache.size).toBeGreaterThan(0);
    expect(cache.size).toBeLessThan(20);
    // One report over an eighth of the budget is not kept: it cannot empty the cache alone.
    const before = cache.size;
    cache.set("huge", { findings: [finding("y".repeat(maxBytes / 4))], complete: true });
    expect(cache.get("huge")).toBeUndefined();
    expect(cache.size).toBe(before);
  });

  it("keeps nothing with 0 entries", () => {
    const cache = new AnalysisCache({ maxEntries: 0, maxBytes: 1 << 20 });
    cache.set("k", { findings: [], complete: true });
    expect(cache.size).toBe(0);
  });
});

describe("parseAnalyserOutput", () => {
  const units = [{ cell: 0, source: "" }];
  const ok = { findings: [{ ...finding(), cell: 0 }], errors: [] };
  it("accepts a well-formed answer", () => {
    expect(parseAnalyserOutput(JSON.stringify(ok), units)).toEqual(ok);
  });
  it.each([
    ["not JSON", "garbage"],
    ["an extra field", JSON.stringify({ ...ok, extra: 1 })],
    [
      "an unknown severity",
      JSON.stringify({ findings: [{ ...ok.findings[0], severity: "x" }], errors: [] }),
    ],
    [
      "a cell it was not asked about",
      JSON.stringify({ findings: [{ ...finding(), cell: 7 }], errors: [] }),
    ],
    [
      "a rule id that is not a name",
      JSON.stringify({ findings: [{ ...ok.findings[0], ruleId: "<b>" }], errors: [] }),
    ],
    [
      "a huge message",
      JSON.stringify({
        findings: [{ ...ok.findings[0], message: "x".repeat(10_000) }],
        errors: [],
      }),
    ],
    [
      "too many findings",
      JSON.stringify({ findings: Array(3000).fill(ok.findings[0]), errors: [] }),
    ],
    ["more than the answer cap", `${JSON.stringify(ok)}${" ".repeat(MAX_ANSWER_BYTES)}`],
  ])("refuses %s", (_, text) => {
    expect(parseAnalyserOutput(text, units)).toBeNull();
  });
});
