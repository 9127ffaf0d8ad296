/**
 * The analysis service: picks the analyser for a language, bounds how many
 * analysis sandboxes run at once, and applies a policy mode (server default,
 * overridden per API key) to the report.
 */
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import { defaultNativeDir, type SandboxHost } from "../sandbox/host.js";
import {
  describeFinding,
  isBlocked,
  sortFindings,
  type AnalysisReport,
  type Finding,
  type PolicyMode,
  type SourceUnit,
} from "./findings.js";
import { analyseJavaScript } from "./javascript.js";
import { analysePython } from "./python.js";

/** Languages with an analyser, by name and alias. */
const ANALYSED: Record<string, "python" | "javascript"> = {
  python: "python",
  py: "python",
  python3: "python",
  javascript: "javascript",
  js: "javascript",
  node: "javascript",
};

const MAX_WAITING = 100;

export interface PolicyVerdict {
  mode: PolicyMode;
  /** Null when the mode is off or the language has no analyser. */
  report: AnalysisReport | null;
  blocked: boolean;
}

export class Analyzer {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly config: Config,
    private readonly host: SandboxHost,
    private readonly registry: RuntimeRegistry,
  ) {}

  /** The analysed language a name stands for, or null. */
  static languageOf(name: string): "python" | "javascript" | null {
    return ANALYSED[name.toLowerCase()] ?? null;
  }

  /** The key's own mode wins over the server's. */
  modeFor(keyPolicy: PolicyMode | null | undefined): PolicyMode {
    return keyPolicy ?? this.config.policy.mode;
  }

  /** Analyses source units (cells or one file). Throws UNSUPPORTED_LANGUAGE for other languages. */
  async analyse(language: string, units: SourceUnit[]): Promise<AnalysisReport> {
    const lang = Analyzer.languageOf(language);
    if (!lang)
      throw new WardenError(
        "UNSUPPORTED_LANGUAGE",
        `language: analysis exists for python and javascript (got ${language})`,
      );
    const started = Date.now();
    let result: { findings: Finding[]; complete: boolean };
    if (lang === "javascript") result = analyseJavaScript(units);
    else result = await this.slot(() => this.python(units));
    return {
      language: lang,
      findings: sortFindings(result.findings),
      complete: result.complete,
      durationMs: Date.now() - started,
    };
  }

  /** Analyses when the mode asks for it and says whether the code may run. */
  async check(
    mode: PolicyMode,
    language: string,
    units: SourceUnit[],
    force = false,
  ): Promise<PolicyVerdict> {
    if ((mode === "off" && !force) || !Analyzer.languageOf(language))
      return { mode, report: null, blocked: false };
    const report = await this.analyse(language, units);
    return { mode, report, blocked: isBlocked(mode, report) };
  }

  private python(units: SourceUnit[]): ReturnType<typeof analysePython> {
    const p = this.config.policy;
    return analysePython(units, {
      host: this.host,
      registry: this.registry,
      nativeDir: this.config.sandbox.nativeDir ?? defaultNativeDir(),
      limits: {
        timeoutMs: p.analysisTimeout * 1000,
        killGraceMs: 0,
        memoryMb: p.analysisMemoryMb,
        cpuPercent: this.config.defaults.cpuPercent,
        diskMb: 4,
        pids: 8,
        outputBytes: 1 << 20,
        openFiles: 64,
      },
    });
  }

  /** Runs `task` when fewer than maxConcurrentAnalyses are running; a long queue is SANDBOX_BUSY. */
  private async slot<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.config.policy.maxConcurrentAnalyses) {
      if (this.waiting.length >= MAX_WAITING)
        throw new WardenError("SANDBOX_BUSY", "analysis: too many analyses waiting; retry later", {
          details: { retryAfterSeconds: 1 },
        });
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/** The MALICIOUS_CODE message for a blocked report: the first findings, named. */
export function blockedMessage(report: AnalysisReport): string {
  const high = report.findings.filter((f) => f.severity === "high");
  const shown = high.slice(0, 3).map(describeFinding).join("; ");
  return `refused by policy: ${high.length} high-severity finding(s): ${shown}${high.length > 3 ? "; ..." : ""}`;
}
