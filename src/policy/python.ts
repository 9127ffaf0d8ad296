/**
 * Python analysis with Python's own `ast`, run in a one-shot sandbox with
 * tight limits: hostile source (deep nesting, huge literals, parser bugs) can
 * only exhaust that sandbox, never Warden's process or the host interpreter.
 * This is the cold path; warm-analyser.ts keeps one started, and falls back here.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { WardenError } from "../errors.js";
import { executeCode } from "../runtimes/execute.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { SandboxLimits } from "../sandbox/types.js";
import {
  failedAnalysis,
  parseAnalyserOutput,
  toUnitAnalysis,
  type UnitAnalysis,
} from "./analyser-output.js";
import type { SourceUnit } from "./findings.js";

export type { UnitAnalysis } from "./analyser-output.js";

export interface PythonAnalysisOptions {
  host: SandboxHost;
  registry: RuntimeRegistry;
  /** The analyser's source and version (loadRuleSet). */
  rules: RuleSet;
  limits: SandboxLimits;
}

/** The analyser program and a digest of it: the version of the Python rules. */
export interface RuleSet {
  source: string;
  /** sha256 of analyze.py: any change to the rules changes it. */
  version: string;
}

const loaded = new Map<string, Promise<RuleSet>>();

/** Reads analyze.py once per directory; a failed read is retried next time. */
export function loadRuleSet(nativeDir: string): Promise<RuleSet> {
  let rules = loaded.get(nativeDir);
  if (!rules) {
    rules = readFile(join(nativeDir, "analyze.py"), "utf8").then(
      (source) => ({ source, version: createHash("sha256").update(source).digest("hex") }),
      (error: unknown) => {
        loaded.delete(nativeDir);
        throw new WardenError(
          "INTERNAL",
          "the Python analyser is not installed next to the native helpers (npm run build:native)",
          { cause: error },
        );
      },
    );
    loaded.set(nativeDir, rules);
  }
  return rules;
}

/** The request the analyser reads: the same JSON on the cold and warm paths. */
export function analyserRequest(units: readonly SourceUnit[]): string {
  return JSON.stringify({ cells: units });
}

export async function analysePython(
  units: SourceUnit[],
  o: PythonAnalysisOptions,
): Promise<UnitAnalysis> {
  const result = await executeCode(o.host, o.registry, {
    language: "python",
    files: [{ path: "analyze.py", content: o.rules.source }],
    // The code travels on stdin: it never lands in the workspace (tmpfs, counted as memory).
    stdin: analyserRequest(units),
    limits: o.limits,
  });
  if (result.status !== "completed")
    return failedAnalysis(
      units,
      `analysis ended ${result.status} (the analyser's sandbox hit a limit): this code could not be checked`,
    );
  const output = parseAnalyserOutput(result.stdout, units);
  return output ? toUnitAnalysis(output) : failedAnalysis(units, "analysis produced no report");
}
