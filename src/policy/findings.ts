/**
 * What static analysis reports and what a policy mode does with it. Analysis
 * is policy and insight, never the security boundary: the kernel is.
 */
import type { AnalysisReport, Finding, PolicyMode } from "../contract/policy.js";

/** One unit of source: a notebook cell (with its index) or a whole file (cell null). */
export interface SourceUnit {
  cell: number | null;
  source: string;
  /**
   * What the unit is, which decides how Python is read: a notebook `cell` may
   * hold IPython lines (`!cmd`, `%magic`), set aside as the notebook runner
   * does; a `program` (the code that runs) must parse, or block mode refuses
   * it; a `file` (any other request file, maybe data) may fail to parse.
   * @default "file"
   */
  kind?: "cell" | "program" | "file";
}

/** Findings in reading order: by cell, then line, then column. */
export function sortFindings(findings: Finding[]): Finding[] {
  return [...findings].sort(
    (a, b) => (a.cell ?? -1) - (b.cell ?? -1) || a.line - b.line || a.column - b.column,
  );
}

/**
 * Code is refused in `block` mode when any finding is high severity. An analysis
 * that could not finish yields a high `analysis-failed` finding, so block mode
 * fails closed on code crafted to defeat the analyser.
 */
export function isBlocked(mode: PolicyMode, report: AnalysisReport): boolean {
  return mode === "block" && report.findings.some((f) => f.severity === "high");
}

/** One line per finding: `cell 3, line 2:5 high process-exec: os.system(): ...` */
export function describeFinding(f: Finding): string {
  const where = `${f.cell === null ? "" : `cell ${f.cell}, `}line ${f.line}:${f.column}`;
  return `${where} ${f.severity} ${f.ruleId}: ${f.message}`;
}
