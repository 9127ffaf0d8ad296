/**
 * Comparing a case's output with what was expected: pure functions, one per
 * mode, each returning null (equal) or a short description of the first
 * difference. The description is bounded whatever the outputs hold: it
 * quotes at most a few dozen characters of each side.
 */
import type { Comparison } from "../contract/judging.js";

/** How a run compares outputs, resolved from the request (the checker runs elsewhere). */
export interface CompareRule {
  mode: Comparison["mode"];
  absoluteTolerance?: number | undefined;
  relativeTolerance?: number | undefined;
}

/** The tolerance of `float` when the request sets neither. */
export const DEFAULT_FLOAT_TOLERANCE = 1e-6;
const QUOTE_CHARS = 48;

/** A piece of output, quoted and cut: what a diff shows of it. */
function quote(text: string | undefined): string {
  if (text === undefined) return "end of output";
  const cut = text.length > QUOTE_CHARS ? `${text.slice(0, QUOTE_CHARS)}…` : text;
  return JSON.stringify(cut);
}

function lines(text: string, trimEnd: boolean): string[] {
  const all = text.split("\n").map((l) => (trimEnd ? l.replace(/[ \t\r\f\v]+$/, "") : l));
  if (trimEnd) while (all.length > 0 && all[all.length - 1] === "") all.pop();
  return all;
}

function compareLines(actual: string, expected: string, trimEnd: boolean): string | null {
  const a = lines(actual, trimEnd);
  const e = lines(expected, trimEnd);
  const n = Math.max(a.length, e.length);
  for (let i = 0; i < n; i++)
    if (a[i] !== e[i]) return `line ${i + 1}: expected ${quote(e[i])}, got ${quote(a[i])}`;
  return null;
}

function tokens(text: string): string[] {
  return text.split(/\s+/).filter((t) => t !== "");
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Both tokens are numbers within the tolerance (absolute or relative, either suffices). */
function closeEnough(a: string, e: string, rule: CompareRule): boolean {
  if (!NUMBER.test(a) || !NUMBER.test(e)) return false;
  const x = Number(a);
  const y = Number(e);
  if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
  const abs = rule.absoluteTolerance;
  const rel = rule.relativeTolerance;
  const diff = Math.abs(x - y);
  if (abs === undefined && rel === undefined) return diff <= DEFAULT_FLOAT_TOLERANCE;
  return (abs !== undefined && diff <= abs) || (rel !== undefined && diff <= rel * Math.abs(y));
}

function compareTokens(actual: string, expected: string, rule: CompareRule): string | null {
  const a = tokens(actual);
  const e = tokens(expected);
  const n = Math.max(a.length, e.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = e[i];
    if (x === y) continue;
    if (rule.mode === "float" && x !== undefined && y !== undefined && closeEnough(x, y, rule))
      continue;
    return `token ${i + 1}: expected ${quote(y)}, got ${quote(x)}`;
  }
  return null;
}

/** null when `actual` passes against `expected` under `rule`; else the first difference. */
export function compareOutput(actual: string, expected: string, rule: CompareRule): string | null {
  switch (rule.mode) {
    case "exact":
      if (actual === expected) return null;
      return compareLines(actual, expected, false) ?? "outputs differ (line endings)";
    case "trailing_whitespace":
      return compareLines(actual, expected, true);
    case "tokens":
    case "float":
      return compareTokens(actual, expected, rule);
    case "checker":
      return null; // decided by the checker program
  }
}
