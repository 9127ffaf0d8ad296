/**
 * Python analysis with Python's own `ast`, run in a one-shot sandbox with
 * tight limits: hostile source (deep nesting, huge literals, parser bugs) can
 * only exhaust that sandbox, never Warden's process or the host interpreter.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { WardenError } from "../errors.js";
import { executeCode } from "../runtimes/execute.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { SandboxLimits } from "../sandbox/types.js";
import type { Finding } from "../contract/policy.js";
import type { SourceUnit } from "./findings.js";

export interface PythonAnalysisOptions {
  host: SandboxHost;
  registry: RuntimeRegistry;
  /** Directory holding analyze.py (the build copies it next to the native helpers). */
  nativeDir: string;
  limits: SandboxLimits;
}

export interface UnitAnalysis {
  findings: Finding[];
  /** False when the analyser could not finish (a limit hit, a crash). */
  complete: boolean;
}

interface AnalyserOutput {
  findings: Finding[];
  errors: { cell: number | null; message: string }[];
}

const failed = (cell: number | null, message: string): Finding => ({
  ruleId: "analysis-failed",
  severity: "high",
  message,
  line: 1,
  column: 1,
  cell,
});

let script: Promise<string> | undefined;

export async function analysePython(
  units: SourceUnit[],
  o: PythonAnalysisOptions,
): Promise<UnitAnalysis> {
  script ??= readFile(join(o.nativeDir, "analyze.py"), "utf8");
  const source = await script.catch((error: unknown) => {
    script = undefined;
    throw new WardenError(
      "INTERNAL",
      "the Python analyser is not installed next to the native helpers (npm run build:native)",
      { cause: error },
    );
  });
  const result = await executeCode(o.host, o.registry, {
    language: "python",
    files: [{ path: "analyze.py", content: source }],
    // The code travels on stdin: it never lands in the workspace (tmpfs, counted as memory).
    stdin: JSON.stringify({ cells: units }),
    limits: o.limits,
  });
  const firstCell = units[0]?.cell ?? null;
  if (result.status !== "completed")
    return {
      findings: [
        failed(
          firstCell,
          `analysis ended ${result.status} (the analyser's sandbox hit a limit): this code could not be checked`,
        ),
      ],
      complete: false,
    };
  let output: AnalyserOutput;
  try {
    output = JSON.parse(result.stdout) as AnalyserOutput;
  } catch {
    return { findings: [failed(firstCell, "analysis produced no report")], complete: false };
  }
  return {
    findings: [...output.findings, ...output.errors.map((e) => failed(e.cell, e.message))],
    complete: output.errors.length === 0,
  };
}
