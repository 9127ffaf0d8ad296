/**
 * Notebooks: read an upload (.ipynb or .py) within the limits, analyse it
 * under the caller's policy, run it in a fresh session, keep the executed
 * notebook in the data dir under a Warden-chosen name for download.
 */
import type { Isolation } from "../contract/isolation.js";
import type { KeyIsolation } from "../executions/isolation.js";
import { mkdirSync } from "node:fs";
import { readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import { blockedMessage, type Analyzer } from "../policy/analyzer.js";
import { refuseShellLines } from "../sessions/run-policy.js";
import type { AnalysisReport, Finding, PolicyMode } from "../contract/policy.js";
import type { SourceUnit } from "../policy/findings.js";
import type { SessionManager } from "../sessions/manager.js";
import type { NewEvent } from "../store/records.js";
import { ulid } from "../util/ids.js";
import {
  parseNotebook,
  pythonToNotebook,
  sourceText,
  validateNotebook,
  type Notebook,
} from "./format.js";
import { runNotebook, type RunSummary } from "./runner.js";

export type Upload = { notebook: unknown } | { filename: string; content: string | Buffer };

export interface NotebookRunRequest {
  /** A prebuilt environment (GET /v1/environments). @default "default" */
  environment?: string | undefined;
  /** Seconds per cell. @default config.notebooks.cellTimeout */
  cellTimeout?: number | undefined;
  /** @default true */
  stopOnError?: boolean | undefined;
  /** Aborting cancels the run (say, the client hung up). */
  signal?: AbortSignal | undefined;
  /** The tier asked for; resolved with the key's and the server's as for a session. */
  isolation?: Isolation | undefined;
}

export interface NotebookRun {
  id: string;
  status: "completed" | "failed" | "rejected";
  userId: string;
  createdAt: string;
  /** The executed notebook (nbformat 4.5); for a rejected one, the upload as it came. */
  notebook: Notebook;
  summary: RunSummary & { findings: Finding[]; analysisComplete: boolean; policy: PolicyMode };
  error: { code: "MALICIOUS_CODE"; message: string; retryable: false } | null;
}

export const NOTEBOOK_ID = /^nb_[0-9A-Z]{26}$/;

/** How often stored runs past retentionDays are removed. */
const EXPIRY_INTERVAL_MS = 3_600_000;

/**
 * The language a notebook's metadata names (kernelspec, then language_info;
 * python if none), resolved through the analyser's runtimes. The CLI uses it
 * too, so a notebook is analysed as the language it will run in.
 */
export function notebookLanguage(notebook: Notebook, analyzer: Analyzer): "python" | "javascript" {
  const m = notebook.metadata as {
    kernelspec?: { language?: unknown };
    language_info?: { name?: unknown };
  };
  const named = m.kernelspec?.language ?? m.language_info?.name ?? "python";
  const language = typeof named === "string" ? analyzer.languageOf(named) : null;
  if (!language)
    throw new WardenError(
      "UNSUPPORTED_LANGUAGE",
      `metadata.kernelspec.language: notebooks run in python or javascript (got ${JSON.stringify(named)})`,
    );
  return language;
}

/** A notebook's code cells as analysis units: cells, so IPython lines are read as the runner reads them. */
export function notebookUnits(notebook: Notebook): SourceUnit[] {
  return notebook.cells.flatMap((cell, index) =>
    cell.cell_type === "code"
      ? [{ cell: index, source: sourceText(cell.source), kind: "cell" as const }]
      : [],
  );
}

export class NotebookService {
  private readonly expiry: NodeJS.Timeout | undefined;

  /**
   * @param storeDir where executed notebooks are kept for download (Warden's
   * data dir, under Warden-chosen names); null keeps nothing (the CLI).
   */
  constructor(
    private readonly config: Config,
    private readonly sessions: SessionManager,
    private readonly analyzer: Analyzer,
    private readonly audit: (event: NewEvent) => void,
    private readonly storeDir: string | null,
  ) {
    if (storeDir) {
      mkdirSync(storeDir, { recursive: true, mode: 0o700 });
      void this.expire(storeDir);
      // A long-running service keeps expiring, not only at start; unref'd so it holds no process open.
      this.expiry = setInterval(() => void this.expire(storeDir), EXPIRY_INTERVAL_MS).unref();
    }
  }

  /** Stops the expiry timer; safe to call twice. */
  close(): void {
    clearInterval(this.expiry);
  }

  /** An upload as a validated notebook; refuses what is too large, malformed or of another kind. */
  read(upload: Upload): Notebook {
    const limits = this.config.notebooks;
    const tooLarge = (field: string, size: number): WardenError =>
      new WardenError(
        "INVALID_REQUEST",
        `${field}: ${size} bytes exceed the limit of ${limits.maxBytes} (notebooks.maxBytes)`,
        { details: { httpStatus: 413 } },
      );
    if ("notebook" in upload) {
      // Validated first: that also refuses nesting too deep to serialise.
      const notebook = validateNotebook(upload.notebook, limits);
      const size = Buffer.byteLength(JSON.stringify(notebook));
      if (size > limits.maxBytes) throw tooLarge("notebook", size);
      return notebook;
    }
    const size = Buffer.byteLength(upload.content);
    if (size > limits.maxBytes) throw tooLarge("file", size);
    const text = upload.content.toString();
    if (/\.ipynb$/i.test(upload.filename)) return parseNotebook(text, limits);
    if (/\.py$/i.test(upload.filename)) return pythonToNotebook(text, limits);
    throw new WardenError("INVALID_REQUEST", "filename: must end in .ipynb or .py");
  }

  /** Analyses every code cell; `force` analyses even when the policy is off (for insight). */
  async analyse(notebook: Notebook, mode: PolicyMode, userId: string, force = true) {
    return this.analyzer.check(
      mode,
      notebookLanguage(notebook, this.analyzer),
      notebookUnits(notebook),
      {
        userId,
        force,
      },
    );
  }

  /** Analyses, then (unless the policy blocks it) runs the notebook for `userId`. */
  async run(
    notebook: Notebook,
    actor: {
      userId: string;
      policy?: PolicyMode | null | undefined;
      isolation?: KeyIsolation | null | undefined;
    },
    request: NotebookRunRequest = {},
  ): Promise<NotebookRun> {
    const cellTimeout = request.cellTimeout ?? this.config.notebooks.cellTimeout;
    if (cellTimeout > this.config.maxTimeout)
      throw new WardenError(
        "INVALID_REQUEST",
        `cellTimeout: ${cellTimeout} exceeds the maximum ${this.config.maxTimeout} (maxTimeout)`,
      );
    const language = notebookLanguage(notebook, this.analyzer);
    this.sessions.environments.resolve(request.environment, "environment"); // unknown: refused now
    const mode = this.analyzer.modeFor(actor.policy);
    // `!cmd` lines are raw commands: refused under block mode as a session's commands are.
    const verdict = refuseShellLines(await this.analyse(notebook, mode, actor.userId), this.config);
    const report = verdict.report!;
    const id = `nb_${ulid()}`;
    const base = { id, userId: actor.userId, createdAt: new Date().toISOString() };
    const findings = { findings: report.findings, analysisComplete: report.complete, policy: mode };
    this.record(id, actor.userId, mode, report, verdict.blocked);
    let run: NotebookRun;
    if (verdict.blocked) {
      const zero = { cellsRun: 0, cellsFailed: 0, cellsSkipped: 0, durationMs: report.durationMs };
      run = {
        ...base,
        status: "rejected",
        notebook,
        summary: { ...zero, ...findings },
        error: { code: "MALICIOUS_CODE", message: blockedMessage(report), retryable: false },
      };
    } else {
      const done = await runNotebook(this.sessions, notebook, {
        userId: actor.userId,
        language,
        cellTimeout,
        stopOnError: request.stopOnError ?? true,
        maxSessionSeconds: this.config.maxSessionTimeout,
        maxOutputBytes: this.config.notebooks.maxOutputBytes,
        signal: request.signal,
        environment: request.environment,
        isolation: request.isolation,
        keyIsolation: actor.isolation,
      });
      run = {
        ...base,
        status: done.summary.cellsFailed > 0 ? "failed" : "completed",
        notebook: done.notebook,
        summary: { ...done.summary, ...findings },
        error: null,
      };
    }
    if (this.storeDir)
      await writeFile(join(this.storeDir, `${id}.json`), JSON.stringify(run), { mode: 0o600 });
    return run;
  }

  /** A stored run, for its owner (or an admin); NOT_FOUND otherwise. */
  async get(id: string, userId: string, admin = false): Promise<NotebookRun> {
    if (!NOTEBOOK_ID.test(id) || !this.storeDir)
      throw new WardenError("NOT_FOUND", `notebook ${id} not found`);
    const text = await readFile(join(this.storeDir, `${id}.json`), "utf8").catch(() => null);
    const run = text ? (JSON.parse(text) as NotebookRun) : null;
    if (!run || (!admin && run.userId !== userId))
      throw new WardenError("NOT_FOUND", `notebook ${id} not found`);
    return run;
  }

  /** Findings go to the audit trail in audit and block modes. */
  private record(
    id: string,
    userId: string,
    mode: PolicyMode,
    report: AnalysisReport,
    blocked: boolean,
  ): void {
    if (mode === "off" || (report.findings.length === 0 && !blocked)) return;
    this.audit({
      userId,
      level: "warn",
      event: blocked ? "rejected" : "policy_findings",
      message: blocked
        ? `notebook ${id} refused: ${blockedMessage(report)}`
        : `notebook ${id}: ${report.findings.length} finding(s) (policy ${mode})`,
      data: { notebookId: id, policy: mode, findings: report.findings.slice(0, 50) },
    });
  }

  /** Removes stored runs older than retentionDays. */
  private async expire(dir: string): Promise<void> {
    const cutoff = Date.now() - this.config.retentionDays * 86_400_000;
    for (const name of await readdir(dir).catch(() => [])) {
      const path = join(dir, name);
      const info = await stat(path).catch(() => null);
      if (info && info.mtimeMs < cutoff) await rm(path, { force: true });
    }
  }
}
