/**
 * What static analysis reports and the policy modes a key or the server can
 * set: part of the result contract (findings come back with a run) and of
 * the key store, so it lives at the bottom layer.
 */
import { z } from "zod";

export const SEVERITIES = ["low", "medium", "high"] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * `off`: no analysis on executions; `audit`: analyse, record the findings as an
 * audit event, return them and run anyway; `block`: refuse code with a
 * high-severity finding (status `rejected`, MALICIOUS_CODE).
 */
export const POLICY_MODES = ["off", "audit", "block"] as const;
export const PolicyModeSchema = z.enum(POLICY_MODES);
export type PolicyMode = z.infer<typeof PolicyModeSchema>;

export const FindingSchema = z.object({
  ruleId: z.string().describe("Stable rule name, e.g. process-exec, obfuscated-exec."),
  severity: z.enum(SEVERITIES),
  message: z.string(),
  line: z.number().int().describe("1-based line within the cell (or file)."),
  column: z.number().int().describe("1-based column."),
  cell: z.number().int().nullable().describe("Notebook cell index; null for plain code."),
  file: z.string().optional().describe("The request file it is in, for multi-file executions."),
});
export type Finding = z.infer<typeof FindingSchema>;

export const AnalysisReportSchema = z.object({
  language: z.string(),
  findings: z.array(FindingSchema),
  complete: z
    .boolean()
    .describe("False when some code could not be analysed (its sandbox hit a limit)."),
  durationMs: z.number(),
});
export type AnalysisReport = z.infer<typeof AnalysisReportSchema>;
