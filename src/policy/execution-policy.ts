/**
 * The static-analysis policy of every one-shot run (executions/run-code.ts,
 * which REST, MCP and Piston all go through): python and javascript code is
 * analysed when the key's (or server's) mode is audit or block, before it is
 * queued. Other languages pass unanalysed.
 */
import type { CreateExecutionInput } from "../executions/request.js";
import type { ExecutionService } from "../executions/service.js";
import { blankResult, type ExecutionResult } from "../contract/result.js";
import type { Finding, PolicyMode } from "../contract/policy.js";
import { blockedMessage, type Analyzer } from "./analyzer.js";
import type { SourceUnit } from "./findings.js";
import { executionId } from "../util/ids.js";

/** The answer to code block mode refused: status rejected, MALICIOUS_CODE, the findings. */
export type RejectedResult = ExecutionResult & { findings: Finding[] };

export interface PolicyOutcome {
  /** Set when the code is refused: the result to answer with (status rejected). */
  rejected: RejectedResult | null;
  /** Findings to return with the result (audit and block modes), or null when not analysed. */
  findings: Finding[] | null;
  /** Records the findings against the execution once it has an id. */
  audit: (executionId: string) => void;
}

export async function checkPolicy(
  analyzer: Analyzer,
  service: ExecutionService,
  input: Pick<CreateExecutionInput, "language" | "code" | "files" | "entrypoint">,
  actor: { policy?: PolicyMode | null | undefined },
  userId: string,
): Promise<PolicyOutcome> {
  const mode = analyzer.modeFor(actor.policy);
  const none: PolicyOutcome = { rejected: null, findings: null, audit: () => undefined };
  if (mode === "off" || !analyzer.languageOf(input.language)) return none;
  // base64 files are decoded too: encoding a file must not be a way around block mode.
  const files = (input.files ?? []).map((f) => ({
    path: f.path,
    source: f.encoding === "base64" ? Buffer.from(f.content, "base64").toString("utf8") : f.content,
  }));
  // The program (code, or the entry point: `entrypoint` or the first file) must parse to pass block mode.
  const entry = input.entrypoint ?? files[0]?.path;
  const units: SourceUnit[] =
    input.code !== undefined
      ? [{ cell: 0, source: input.code, kind: "program" }]
      : files.map((f, i) => ({
          cell: i,
          source: f.source,
          kind: f.path === entry ? "program" : "file",
        }));
  if (units.length === 0) return none;
  const verdict = await analyzer.check(mode, input.language, units, { userId });
  const report = verdict.report!;
  // Findings name the file they are in; `cell` is for notebooks.
  const findings = report.findings.map((f) => ({
    ...f,
    cell: null,
    ...(input.code === undefined && f.cell !== null ? { file: files[f.cell]?.path } : {}),
  }));
  const record = (id: string | null, event: string, message: string): void =>
    service.audit({
      executionId: id,
      userId,
      level: "warn",
      event,
      message,
      data: { policy: mode, findings: findings.slice(0, 50) },
    });
  if (verdict.blocked) {
    const message = blockedMessage({ ...report, findings });
    const id = executionId();
    record(id, "rejected", `execution ${id} refused: ${message}`);
    service.metrics.reject("policy");
    return {
      rejected: {
        ...blankResult(id, "rejected", { code: "MALICIOUS_CODE", message, retryable: false }),
        findings,
      },
      findings,
      audit: () => undefined,
    };
  }
  return {
    rejected: null,
    findings,
    audit: (id) => {
      if (findings.length > 0)
        record(id, "policy_findings", `${findings.length} finding(s) (policy ${mode})`);
    },
  };
}
