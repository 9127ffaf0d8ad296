/**
 * `warden analyze FILE` (static analysis, sandboxed for Python) and
 * `warden notebook run IN -o OUT` (a notebook in a fresh local session),
 * both on this machine without the service, like `warden run`.
 */
import { readFile, writeFile } from "node:fs/promises";
import { extname } from "node:path";
import { WardenError } from "../errors.js";
import { parseNotebook } from "../notebooks/format.js";
import { NotebookService, notebookLanguage, notebookUnits } from "../notebooks/service.js";
import { Analyzer } from "../policy/analyzer.js";
import { POLICY_MODES, PolicyModeSchema, type AnalysisReport } from "../contract/policy.js";
import { describeFinding, type SourceUnit } from "../policy/findings.js";
import { SessionManager } from "../sessions/manager.js";
import { createContext, openHost, type GlobalOptions } from "./context.js";
import { EXIT } from "./run.js";

/** Exit codes of `warden analyze` and `warden notebook run`. */
export const NOTEBOOK_EXIT = { clean: 0, findingsOrFailed: 1, rejected: 4 } as const;

const EXTENSIONS: Record<string, string> = {
  ".py": "python",
  ".js": "javascript",
  ".mjs": "javascript",
  ".cjs": "javascript",
};

export async function analyzeCommand(
  file: string,
  options: GlobalOptions & { language?: string; json?: boolean },
): Promise<number> {
  const ctx = createContext(options);
  const text = await readFile(file, "utf8");
  const host = await openHost(ctx);
  let report: AnalysisReport;
  try {
    const analyzer = new Analyzer(ctx.config, host, ctx.registry);
    let language = options.language ?? EXTENSIONS[extname(file).toLowerCase()];
    let units: SourceUnit[] = [{ cell: null, source: text }];
    if (extname(file).toLowerCase() === ".ipynb") {
      // The service's own reading of the notebook: its language and its cells as the runner sees them.
      const notebook = parseNotebook(text, ctx.config.notebooks);
      language = options.language ?? notebookLanguage(notebook, analyzer);
      units = notebookUnits(notebook);
    }
    if (!language)
      throw new WardenError(
        "UNSUPPORTED_LANGUAGE",
        `cannot tell the language of ${file}: pass --language`,
      );
    report = await analyzer.analyse(language, units, { userId: "cli" });
  } finally {
    await host.close();
  }
  if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    for (const f of report.findings) process.stdout.write(`${file}: ${describeFinding(f)}\n`);
    process.stderr.write(
      `${report.findings.length} finding(s)${report.complete ? "" : "; analysis incomplete"}\n`,
    );
  }
  // High severity (or code that could not be analysed) is what block mode would refuse.
  return report.findings.some((f) => f.severity === "high")
    ? NOTEBOOK_EXIT.findingsOrFailed
    : NOTEBOOK_EXIT.clean;
}

export async function notebookRunCommand(
  file: string,
  options: GlobalOptions & {
    output?: string;
    policy?: string;
    cellTimeout?: string;
    environment?: string;
    continue?: boolean;
    json?: boolean;
  },
): Promise<number> {
  const overrides: Record<string, unknown> = {};
  if (options.policy !== undefined) {
    if (!PolicyModeSchema.safeParse(options.policy).success)
      throw new WardenError(
        "INVALID_REQUEST",
        `--policy: unknown mode "${options.policy}" (one of ${POLICY_MODES.join(", ")})`,
      );
    overrides["policy.mode"] = options.policy;
  }
  const ctx = createContext(options, "warn", overrides);
  const cellTimeout = options.cellTimeout === undefined ? undefined : Number(options.cellTimeout);
  if (cellTimeout !== undefined && !(cellTimeout > 0))
    throw new WardenError(
      "INVALID_REQUEST",
      "--cell-timeout: must be a positive number of seconds",
    );
  const content = await readFile(file);
  const host = await openHost(ctx);
  const log = ctx.logger;
  const sessions = new SessionManager(ctx.config, host, log, {
    audit: (e) => log[e.level](e, e.message),
  });
  try {
    const analyzer = new Analyzer(ctx.config, host, ctx.registry);
    const notebooks = new NotebookService(
      ctx.config,
      sessions,
      analyzer,
      (e) => log[e.level](e, e.message),
      null,
    );
    const notebook = notebooks.read({ filename: file, content });
    const run = await notebooks.run(
      notebook,
      { userId: "cli" },
      { cellTimeout, stopOnError: !options.continue, environment: options.environment },
    );
    const text = `${JSON.stringify(run.notebook, null, 1)}\n`;
    if (options.output) await writeFile(options.output, text);
    else if (!options.json) process.stdout.write(text);
    if (options.json) process.stdout.write(`${JSON.stringify(run, null, 2)}\n`);
    for (const f of run.summary.findings) process.stderr.write(`${file}: ${describeFinding(f)}\n`);
    const s = run.summary;
    process.stderr.write(
      run.error
        ? `warden: rejected: ${run.error.code}: ${run.error.message}\n`
        : `${s.cellsRun} cell(s) run, ${s.cellsFailed} failed, ${s.cellsSkipped} skipped in ${s.durationMs} ms\n`,
    );
    if (run.status === "rejected") return NOTEBOOK_EXIT.rejected;
    return run.status === "completed" ? NOTEBOOK_EXIT.clean : NOTEBOOK_EXIT.findingsOrFailed;
  } catch (error) {
    if (error instanceof WardenError) throw error;
    process.stderr.write(`warden: internal error: ${(error as Error).message}\n`);
    return EXIT.wardenError;
  } finally {
    await sessions.closeAll();
    await host.close();
  }
}
