/**
 * The static-analysis policy of code run in a session: the session's side of
 * executions/run-code.ts. REST (`/run`, `/commands`) and MCP (`run_in_sandbox`,
 * `exec_command`) translate into these calls and never call the manager's run
 * or command themselves, so no interface is a way around block mode (before,
 * a block-mode key could run anything through a session).
 *
 * - Cells (python, javascript) are analysed like an execution's program before
 *   they reach the sandbox: block mode refuses a high finding (status
 *   rejected, MALICIOUS_CODE, audited `rejected`); audit mode records the
 *   findings (`policy_findings`) and returns them with the cell.
 * - Raw commands cannot be analysed (a shell line can hide any program), so
 *   under block mode they are refused unless the operator set
 *   `policy.sessionCommands: "allow"`. Audit mode runs them and records what
 *   block mode would have refused.
 *
 * Notebooks analyse the whole notebook first (notebooks/service.ts) and call
 * the manager directly: their cells are not analysed twice.
 */
import type { Config } from "../config/schema.js";
import type { Finding, PolicyMode } from "../contract/policy.js";
import { WardenError } from "../errors.js";
import type { ExecutionFrontend } from "../executions/frontend.js";
import { blockedMessage, type Analyzer, type PolicyVerdict } from "../policy/analyzer.js";
import { isBlocked } from "../policy/findings.js";
import { auditPolicy } from "../policy/execution-policy.js";
import type { BackgroundInfo, BackgroundStart } from "./commands.js";
import { cellLanguage } from "./languages.js";
import type { SessionManager } from "./manager.js";
import type { PolicyRefusal } from "../contract/session.js";
import type { CellResult, CommandOptions, CommandResult, RunCellOptions } from "./types.js";

export interface SessionRunDeps {
  sessions: SessionManager;
  analyzer: Analyzer;
  /** The audit trail and metrics: the same events as executions. */
  service: Pick<ExecutionFrontend, "audit" | "metrics">;
  config: Pick<Config, "policy">;
}

/** Who asks: the key's user and its static-analysis mode (null or absent = the server's). */
export interface SessionActor {
  userId: string;
  policy?: PolicyMode | null | undefined;
}

/** A cell the policy refused, or one it let through: `run` runs it (only once the check is done). */
export type CellCheck =
  | { rejected: PolicyRefusal; run: null }
  | { rejected: null; run: (o: CellRunOptions) => Promise<CellResult> };
export type CellRunOptions = Omit<RunCellOptions, "code" | "language">;

/** A command the policy let through: run it in the foreground, or start it in the background. */
export interface AllowedCommand {
  run(o: Omit<CommandOptions, "command">): Promise<CommandResult>;
  start(o: Omit<BackgroundStart, "command">): BackgroundInfo;
}

/** Audit data holds at most this much of a command line. */
const COMMAND_SHOWN = 200;

/**
 * Analyses a cell under the actor's policy. Two steps, so that an interface
 * can answer a refusal before it opens a stream for the cell's output.
 */
export async function checkCell(
  deps: SessionRunDeps,
  actor: SessionActor,
  sessionId: string,
  cell: { code: string; language?: string | undefined },
): Promise<CellCheck> {
  const { sessions, analyzer, service } = deps;
  const mode = analyzer.modeFor(actor.policy);
  // Ownership first (NOT_FOUND), so no one has another user's cell analysed.
  const session = sessions.get(sessionId, actor.userId);
  const runWith =
    (findings: Finding[] | undefined, language: string | undefined) =>
    async (o: CellRunOptions): Promise<CellResult> => {
      // The client left while the cell was analysed: nobody waits for it, so it does not run.
      if (o.signal?.aborted)
        throw new WardenError("INVALID_REQUEST", "the client went away before the cell ran");
      const result = await sessions.run(sessionId, actor.userId, {
        ...o,
        code: cell.code,
        language,
      });
      return findings ? { ...result, findings } : result;
    };
  if (mode === "off") return { rejected: null, run: runWith(undefined, cell.language) };
  // The language the manager will run: any alias it takes resolves here too.
  const language = cellLanguage(cell.language, session.language);
  // bash and TypeScript cells have no analyser: to the policy they are raw
  // commands, refused under block mode as commands are (else a block-mode
  // key would run anything as a bash cell).
  if (language === "bash" || language === "typescript") {
    checkCommand(deps, actor, sessionId, cell.code, false);
    return { rejected: null, run: runWith(undefined, language) };
  }
  // A cell is the code that runs, like an execution's program: it must parse to pass block mode.
  const verdict = await analyzer.check(
    mode,
    language,
    [{ cell: 0, source: cell.code, kind: "program" }],
    { userId: actor.userId },
  );
  const findings: Finding[] = (verdict.report?.findings ?? []).map((f) => ({ ...f, cell: null }));
  const audited = { userId: actor.userId, mode, findings, data: { sessionId } };
  if (verdict.blocked) {
    const message = blockedMessage({ ...verdict.report!, findings });
    auditPolicy(service, "rejected", {
      ...audited,
      message: `cell in session ${sessionId} refused: ${message}`,
    });
    const error = { code: "MALICIOUS_CODE" as const, message, retryable: false };
    return { rejected: { status: "rejected", success: false, error, findings }, run: null };
  }
  if (findings.length > 0)
    auditPolicy(service, "policy_findings", {
      ...audited,
      message: `cell in session ${sessionId}: ${findings.length} finding(s) (policy ${mode})`,
    });
  return { rejected: null, run: runWith(findings, language) };
}

/**
 * A raw command under the actor's policy: refused (PERMISSION_DENIED, audited)
 * when block mode refuses raw commands; otherwise allowed (and, in audit mode,
 * recorded as what block mode would refuse).
 */
export function allowCommand(
  deps: SessionRunDeps,
  actor: SessionActor,
  sessionId: string,
  command: string | string[],
  background: boolean,
): AllowedCommand {
  const { sessions } = deps;
  sessions.get(sessionId, actor.userId); // NOT_FOUND before anything is audited
  checkCommand(deps, actor, sessionId, command, background);
  return {
    run: (o) => sessions.command(sessionId, actor.userId, { ...o, command }),
    start: (o) => sessions.startBackground(sessionId, actor.userId, { ...o, command }),
  };
}

/**
 * Whether the policy mode refuses raw shell commands (session commands,
 * notebook `!cmd` lines): under block mode, unless the operator allowed them.
 */
function commandsRefused(mode: PolicyMode, config: Pick<Config, "policy">): boolean {
  return mode === "block" && config.policy.sessionCommands === "block";
}

const COMMANDS_REFUSED_MESSAGE =
  "command: shell commands cannot be statically analysed, and this key's policy is block (server setting policy.sessionCommands: block); run code as a cell instead";

/** Refuses (PERMISSION_DENIED, audited) or audits a raw command under the actor's policy. */
function checkCommand(
  deps: SessionRunDeps,
  actor: SessionActor,
  sessionId: string,
  command: string | string[],
  background: boolean,
): void {
  const { analyzer, config, service } = deps;
  const mode = analyzer.modeFor(actor.policy);
  if (mode === "off" || !commandsRefused("block", config)) return;
  const line = typeof command === "string" ? command : command.join(" ");
  const data = {
    sessionId,
    policy: mode,
    background,
    command: line.length > COMMAND_SHOWN ? `${line.slice(0, COMMAND_SHOWN)}…` : line,
  };
  if (mode === "block") {
    service.audit({
      userId: actor.userId,
      level: "warn",
      event: "rejected",
      message: `command in session ${sessionId} refused: raw commands cannot be analysed`,
      data,
    });
    service.metrics.reject("policy");
    throw new WardenError("PERMISSION_DENIED", COMMANDS_REFUSED_MESSAGE, {
      details: { policy: "block", setting: "policy.sessionCommands" },
    });
  }
  // Audit mode: what block mode would refuse is on the record, and it runs.
  service.audit({
    userId: actor.userId,
    level: "warn",
    event: "policy_findings",
    message: `command in session ${sessionId} ran unanalysed (policy ${mode})`,
    data,
  });
}

/**
 * A notebook's `!cmd` / `%%bash` lines are raw commands run in its session:
 * where block mode refuses session commands, they become high findings, so
 * the notebook is refused like code with one (and the finding says why).
 */
export function refuseShellLines(
  verdict: PolicyVerdict,
  config: Pick<Config, "policy">,
): PolicyVerdict {
  if (!verdict.report || !commandsRefused(verdict.mode, config)) return verdict;
  const findings = verdict.report.findings.map((f) =>
    f.ruleId === "ipython-shell"
      ? {
          ...f,
          severity: "high" as const,
          message: `${f.message} (raw commands cannot be analysed; policy.sessionCommands: block)`,
        }
      : f,
  );
  const report = { ...verdict.report, findings };
  return { ...verdict, report, blocked: isBlocked(verdict.mode, report) };
}
