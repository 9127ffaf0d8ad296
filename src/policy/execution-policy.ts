/**
 * The static-analysis policy of every one-shot run (executions/run-code.ts,
 * which REST, MCP and Piston all go through): python and javascript code is
 * analysed when the key's (or server's) mode is audit or block, before it is
 * queued. Other languages pass unanalysed.
 */
import type { CreateExecutionInput } from "../executions/request.js";
import type { ExecutionFrontend } from "../executions/frontend.js";
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

/** Findings kept in one audit event at most. */
const MAX_AUDITED_FINDINGS = 50;

/**
 * What a policy verdict leaves in the trail, for executions and session cells
 * alike: a refusal is audited and counted; findings a run goes on with, audited.
 */
export function auditPolicy(
  service: Pick<ExecutionFrontend, "audit" | "metrics">,
  event: "rejected" | "policy_findings",
  o: {
    userId: string;
    executionId?: string | undefined;
    mode: PolicyMode;
    findings: Finding[];
    message: string;
    data?: Record<string, unknown>;
  },
): void {
  service.audit({
    executionId: o.executionId,
    userId: o.userId,
    level: "warn",
    event,
    message: o.message,
    data: { ...o.data, policy: o.mode, findings: o.findings.slice(0, MAX_AUDITED_FINDINGS) },
  });
  if (event === "rejected") service.metrics.reject("policy");
}

export async function checkPolicy(
  analyzer: Analyzer,
  service: ExecutionFrontend,
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
  if (verdict.blocked) {
    const message = blockedMessage({ ...report, findings });
    const id = executionId();
    auditPolicy(service, "rejected", {
      userId,
      executionId: id,
      mode,
      findings,
      message: `execution ${id} refused: ${message}`,
    });
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
        auditPolicy(service, "policy_findings", {
          userId,
          executionId: id,
          mode,
          findings,
          message: `${findings.length} finding(s) (policy ${mode})`,
        });
    },
  };
}
