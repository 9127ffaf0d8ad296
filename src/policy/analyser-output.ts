/**
 * What the Python analyser answers, checked. The analyser runs in a sandbox
 * next to hostile source, so its answer is hostile input like any sandbox
 * output: one strict schema with a cap on every array and string, shared by
 * the cold (one-shot) and warm (long-lived) paths. A finding that does not fit
 * is no report at all, and no report fails closed (a high `analysis-failed`).
 */
import { z } from "zod";
import { SEVERITIES, type Finding } from "../contract/policy.js";
import type { SourceUnit } from "./findings.js";

/** An answer line (or a cold run's stdout) longer than this is not read further. */
export const MAX_ANSWER_BYTES = 1 << 20;

const MAX_ITEMS = 2_000;
const MAX_TEXT = 4_096;

const AnalyserFindingSchema = z
  .object({
    ruleId: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/),
    severity: z.enum(SEVERITIES),
    message: z.string().max(MAX_TEXT),
    line: z.number().int().min(1),
    column: z.number().int().min(1),
    cell: z.number().int().nullable(),
  })
  .strict();

export const AnalyserOutputSchema = z
  .object({
    findings: z.array(AnalyserFindingSchema).max(MAX_ITEMS),
    errors: z
      .array(z.object({ cell: z.number().int().nullable(), message: z.string().max(MAX_TEXT) }))
      .max(MAX_ITEMS),
  })
  .strict();
export type AnalyserOutput = z.infer<typeof AnalyserOutputSchema>;

export interface UnitAnalysis {
  findings: Finding[];
  /** False when the analyser could not finish (a limit hit, a crash, no report). */
  complete: boolean;
}

const failed = (cell: number | null, message: string): Finding => ({
  ruleId: "analysis-failed",
  severity: "high",
  message,
  line: 1,
  column: 1,
  cell,
});

/** The fail-closed answer for units the analyser could not check. */
export function failedAnalysis(units: readonly SourceUnit[], why: string): UnitAnalysis {
  return { findings: [failed(units[0]?.cell ?? null, why)], complete: false };
}

/**
 * Parses one answer: JSON, the schema, and every finding's cell one the
 * request asked about (an analyser must not invent cells). Null when it fails.
 */
export function parseAnalyserOutput(
  text: string,
  units: readonly SourceUnit[],
): AnalyserOutput | null {
  if (Buffer.byteLength(text) > MAX_ANSWER_BYTES) return null;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = AnalyserOutputSchema.safeParse(json);
  if (!parsed.success) return null;
  const cells = new Set(units.map((u) => u.cell));
  const known = (cell: number | null): boolean => cells.has(cell);
  if (!parsed.data.findings.every((f) => known(f.cell))) return null;
  if (!parsed.data.errors.every((e) => known(e.cell))) return null;
  return parsed.data;
}

/** A checked answer as findings: the analyser's own errors fail closed. */
export function toUnitAnalysis(output: AnalyserOutput): UnitAnalysis {
  return {
    findings: [...output.findings, ...output.errors.map((e) => failed(e.cell, e.message))],
    complete: output.errors.length === 0,
  };
}
