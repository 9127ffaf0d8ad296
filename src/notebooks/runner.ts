/**
 * Runs a notebook's code cells in order in a fresh session and fills in
 * their outputs as nbformat 4 (stream, execute_result, display_data, error).
 * IPython shell lines (`!cmd`, `%%bash`) run through the session's shell;
 * other magics are reported as unsupported for their cell, never a crash.
 */
import type { Isolation } from "../contract/isolation.js";
import type { KeyIsolation } from "../executions/isolation.js";
import { randomBytes } from "node:crypto";
import { toErrorInfo } from "../errors.js";
import type { CellResult, SessionManager } from "../sessions/manager.js";
import { sourceText, type Cell, type Notebook } from "./format.js";
import { BLANK, CELL_MAGIC, LINE_MAGIC, LineScanner } from "./line-scanner.js";

/** One output of a code cell, as nbformat 4 writes it. */
export type NotebookOutput =
  | { output_type: "stream"; name: "stdout" | "stderr"; text: string }
  | {
      output_type: "execute_result";
      execution_count: number;
      data: Record<string, string>;
      metadata: Record<string, unknown>;
    }
  | { output_type: "display_data"; data: Record<string, string>; metadata: Record<string, unknown> }
  | { output_type: "error"; ename: string; evalue: string; traceback: string[] };

export interface RunNotebookOptions {
  userId: string;
  language: "python" | "javascript";
  /** Seconds per cell (each shell line or Python block of the cell). */
  cellTimeout: number;
  /** Stop at the first failing cell (the rest keep no outputs). @default true */
  stopOnError: boolean;
  /** Longest session lifetime allowed (config.maxSessionTimeout), seconds. */
  maxSessionSeconds: number;
  /** Aborting ends the session (and the cell running in it); later cells are skipped. */
  signal?: AbortSignal | undefined;
  /**
   * All outputs of the run together, in bytes of text and data: each cell's
   * output is bounded by the session's limits, but 2,000 cells of it would
   * not be. Past it the run stops (the cell that passed it keeps its outputs).
   */
  maxOutputBytes: number;
  /** A prebuilt environment for the notebook's session; absent = the host's packages. */
  environment?: string | undefined;
  /** The tier the run asked for, and the key's settings (the session manager resolves them). */
  isolation?: Isolation | undefined;
  keyIsolation?: KeyIsolation | null | undefined;
}

/** The bytes a cell's outputs hold (what keeping and storing them costs). */
function outputBytes(outputs: NotebookOutput[]): number {
  let bytes = 0;
  for (const o of outputs) {
    if (o.output_type === "stream") bytes += Buffer.byteLength(o.text);
    else if (o.output_type === "error")
      bytes +=
        Buffer.byteLength(o.evalue) + o.traceback.reduce((n, t) => n + Buffer.byteLength(t), 0);
    else for (const v of Object.values(o.data)) bytes += Buffer.byteLength(v);
  }
  return bytes;
}

export interface RunSummary {
  cellsRun: number;
  cellsFailed: number;
  /** Code cells not run because an earlier one failed (stopOnError). */
  cellsSkipped: number;
  durationMs: number;
}

/** A piece of a cell: Python (or JS) code, a shell command, or a magic we do not run. */
type Segment =
  | { kind: "code"; code: string }
  | { kind: "shell"; command: string }
  | { kind: "unsupported"; magic: string };

/** Magics that need nothing here: figures are captured as image/png anyway. */
const NO_OP_MAGICS = new Set(["matplotlib", "config"]);
const SHELL_CELL_MAGICS = new Set(["bash", "sh"]);

/**
 * Splits a Python cell into code, `!cmd` / `%system` lines and other magics.
 * Only statement lines count (see line-scanner.ts): a `%` or `!` line inside
 * brackets, a string or a continuation is code, as native/analyze.py reads it.
 */
export function segments(source: string): Segment[] {
  const lines = source.split("\n");
  const first = lines.findIndex((l) => !BLANK.test(l));
  const cellMagic = first >= 0 ? CELL_MAGIC.exec(lines[first]!) : null;
  if (cellMagic) {
    const body = lines.slice(first + 1).join("\n");
    return SHELL_CELL_MAGICS.has(cellMagic[1]!)
      ? [{ kind: "shell", command: body }]
      : [{ kind: "unsupported", magic: `%%${cellMagic[1]}` }];
  }
  const out: Segment[] = [];
  let code: string[] = [];
  const flush = (): void => {
    if (code.join("").trim() !== "") out.push({ kind: "code", code: code.join("\n") });
    code = [];
  };
  const scanner = new LineScanner();
  for (const line of lines) {
    const statement = scanner.statementLine();
    const magic = statement ? LINE_MAGIC.exec(line) : null;
    if (statement && line.startsWith("!")) {
      flush();
      out.push({ kind: "shell", command: line.slice(1) });
    } else if (magic) {
      flush();
      const [, name, rest] = magic;
      if (name === "system" || name === "sx") out.push({ kind: "shell", command: rest! });
      else if (!NO_OP_MAGICS.has(name!)) out.push({ kind: "unsupported", magic: `%${name}` });
    } else {
      scanner.feed(line);
      code.push(line);
    }
  }
  flush();
  return out;
}

const lines = (text: string): string[] =>
  text.split("\n").filter((l, i, all) => l !== "" || i < all.length - 1);

/**
 * A Python traceback as nbformat lines, without the frames of Warden's own
 * kernel (a `File "/.warden/..."` line and the source lines under it): the
 * reader wants their cell, not our plumbing.
 */
function traceback(text: string): string[] {
  const out: string[] = [];
  let inKernelFrame = false;
  for (const line of lines(text)) {
    if (/^ {2}File "/.test(line)) inKernelFrame = line.startsWith('  File "/.warden/');
    else if (!line.startsWith("    ")) inKernelFrame = false;
    if (!inKernelFrame) out.push(line);
  }
  return out;
}

function streams(stdout: string, stderr: string): NotebookOutput[] {
  const out: NotebookOutput[] = [];
  if (stdout) out.push({ output_type: "stream", name: "stdout", text: stdout });
  if (stderr) out.push({ output_type: "stream", name: "stderr", text: stderr });
  return out;
}

function cellOutputs(r: CellResult, count: number, timeout: number): NotebookOutput[] {
  const out = streams(r.stdout, r.stderr);
  for (const result of r.results)
    out.push(
      result.isMainResult
        ? { output_type: "execute_result", execution_count: count, data: result.data, metadata: {} }
        : { output_type: "display_data", data: result.data, metadata: {} },
    );
  if (r.status === "timeout")
    out.push({
      output_type: "error",
      ename: "TimeoutError",
      evalue: `the cell exceeded its ${timeout} s timeout`,
      traceback: r.error ? traceback(r.error.traceback) : [],
    });
  else if (r.error)
    out.push({
      output_type: "error",
      ename: r.error.name,
      evalue: r.error.value,
      traceback: traceback(r.error.traceback),
    });
  return out;
}

/** Every cell gets a unique id (nbformat 4.5), keeping valid ones it had. */
function withIds(cells: Cell[]): Cell[] {
  const seen = new Set<string>();
  return cells.map((cell) => {
    let id = cell.id;
    while (!id || seen.has(id)) id = randomBytes(4).toString("hex");
    seen.add(id);
    return { ...cell, id };
  });
}

/** Runs a cell's parts in order into `outputs`; true when the cell failed. */
async function runParts(
  sessions: SessionManager,
  sessionId: string,
  parts: Segment[],
  count: number,
  o: RunNotebookOptions,
  outputs: NotebookOutput[],
  room: { bytes: number },
): Promise<boolean> {
  let used = 0;
  let counted = 0;
  for (const part of parts) {
    // One cell may hold thousands of `!cmd` lines: the run's bound is checked after each.
    used += outputBytes(outputs.slice(counted));
    counted = outputs.length;
    if (used > room.bytes) return true;
    if (part.kind === "unsupported") {
      outputs.push({
        output_type: "error",
        ename: "UnsupportedMagic",
        evalue: `${part.magic} is not supported in Warden notebooks (no package installs or IPython extensions; the sandbox has no network by default)`,
        traceback: [],
      });
      return true;
    }
    if (part.kind === "shell") {
      const r = await sessions.command(sessionId, o.userId, {
        command: part.command,
        timeout: o.cellTimeout,
      });
      outputs.push(...streams(r.stdout, r.stderr));
      // Like IPython, a failing `!cmd` prints its output but does not fail the cell.
      if (r.status === "timeout") {
        outputs.push({
          output_type: "error",
          ename: "TimeoutError",
          evalue: `the command exceeded its ${o.cellTimeout} s timeout`,
          traceback: [],
        });
        return true;
      }
      continue;
    }
    const r = await sessions.run(sessionId, o.userId, {
      code: part.code,
      language: o.language,
      timeout: o.cellTimeout,
    });
    outputs.push(...cellOutputs(r, count, o.cellTimeout));
    if (!r.success) return true;
  }
  return false;
}

/**
 * Runs the notebook in a session made for it and destroyed after it. Returns
 * the executed notebook (valid nbformat 4.5) and a summary.
 */
export async function runNotebook(
  sessions: SessionManager,
  input: Notebook,
  o: RunNotebookOptions,
): Promise<{ notebook: Notebook; summary: RunSummary }> {
  const started = Date.now();
  const cells = withIds(input.cells).map((c): Cell =>
    c.cell_type === "code" ? { ...c, outputs: [], execution_count: null } : c,
  );
  const codeCells = cells.filter((c) => c.cell_type === "code").length;
  const summary: RunSummary = { cellsRun: 0, cellsFailed: 0, cellsSkipped: 0, durationMs: 0 };
  const executed = (): Notebook => ({
    ...input,
    nbformat_minor: Math.max(5, input.nbformat_minor),
    cells,
  });
  if (codeCells === 0) return { notebook: executed(), summary };
  const ttl = Math.min(o.maxSessionSeconds, Math.ceil(codeCells * (o.cellTimeout + 5)) + 120);
  const session = await sessions.create(o.userId, {
    timeout: ttl,
    environment: o.environment,
    isolation: o.isolation,
    keyIsolation: o.keyIsolation,
  });
  const cancel = (): void =>
    void sessions.destroy(session.id, o.userId, "notebook run cancelled").catch(() => undefined);
  o.signal?.addEventListener("abort", cancel, { once: true });
  let count = 0;
  let stopped = false;
  let kept = 0;
  try {
    for (const cell of cells) {
      if (cell.cell_type !== "code") continue;
      const source = sourceText(cell.source);
      if (stopped || o.signal?.aborted) {
        summary.cellsSkipped++;
        continue;
      }
      if (source.trim() === "") continue;
      count++;
      const outputs: NotebookOutput[] = [];
      let failed = false;
      const parts: Segment[] =
        o.language === "python" ? segments(source) : [{ kind: "code", code: source }];
      try {
        failed = await runParts(sessions, session.id, parts, count, o, outputs, {
          bytes: o.maxOutputBytes - kept,
        });
      } catch (error) {
        // The session itself failed (say its sandbox died): reported on the cell, the run ends.
        outputs.push({
          output_type: "error",
          ename: "WardenError",
          evalue: `the notebook's session failed: ${toErrorInfo(error).message}`,
          traceback: [],
        });
        failed = true;
        stopped = true;
      }
      kept += outputBytes(outputs);
      if (kept > o.maxOutputBytes) {
        outputs.push({
          output_type: "error",
          ename: "OutputLimit",
          evalue: `the notebook's outputs passed ${o.maxOutputBytes} bytes (notebooks.maxOutputBytes); the remaining cells were not run`,
          traceback: [],
        });
        failed = true;
        stopped = true;
      }
      cell.outputs = outputs;
      cell.execution_count = count;
      summary.cellsRun++;
      if (failed) {
        summary.cellsFailed++;
        if (o.stopOnError) stopped = true;
      }
    }
  } finally {
    o.signal?.removeEventListener("abort", cancel);
    await sessions.destroy(session.id, o.userId, "notebook run finished").catch(() => undefined);
  }
  summary.durationMs = Date.now() - started;
  return { notebook: executed(), summary };
}
