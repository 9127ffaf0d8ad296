/**
 * The analysis service: picks the analyser for a language, bounds how many
 * analysis sandboxes run at once, and applies a policy mode (server default,
 * overridden per API key) to the report.
 */
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import { defaultNativeDir, type SandboxHost } from "../sandbox/host.js";
import type { AnalysisReport, Finding, PolicyMode } from "../contract/policy.js";
import { describeFinding, isBlocked, sortFindings, type SourceUnit } from "./findings.js";
import { analyseJavaScript } from "./javascript.js";
import { analysePython } from "./python.js";

/** Languages with an analyser, by canonical name (aliases resolve through the registry). */
const ANALYSED: Record<string, "python" | "javascript"> = {
  python: "python",
  javascript: "javascript",
};

const MAX_WAITING = 100;
/**
 * Per-user share of the analysis sandboxes: one user's burst of uploads must
 * not hold every slot and the whole queue while everyone else waits.
 */
export const ANALYSES_RUNNING_PER_USER = 2;
export const ANALYSES_WAITING_PER_USER = 10;

export interface AnalyseOptions {
  /** Who asks: analyses are shared fairly between users. */
  userId: string;
  /** Analyse even when the mode is off (for insight). @default false */
  force?: boolean;
}

export interface PolicyVerdict {
  mode: PolicyMode;
  /** Null when the mode is off or the language has no analyser. */
  report: AnalysisReport | null;
  blocked: boolean;
}

export class Analyzer {
  private running = 0;
  private readonly waiting: { userId: string; start: () => void }[] = [];
  private readonly users = new Map<string, { running: number; waiting: number }>();

  constructor(
    private readonly config: Config,
    private readonly host: SandboxHost,
    private readonly registry: RuntimeRegistry,
  ) {}

  /**
   * The analysed language a name stands for, or null. Resolved through the
   * registry, so every alias that runs python or javascript (`nodejs`, or one
   * added in config) is analysed: an alias must not be a way around block mode.
   */
  languageOf(name: string): "python" | "javascript" | null {
    const canonical = this.registry.lookup(name)?.language ?? name;
    return ANALYSED[canonical.toLowerCase()] ?? null;
  }

  /** The key's own mode wins over the server's. */
  modeFor(keyPolicy: PolicyMode | null | undefined): PolicyMode {
    return keyPolicy ?? this.config.policy.mode;
  }

  /** Analyses source units (cells or one file). Throws UNSUPPORTED_LANGUAGE for other languages. */
  async analyse(language: string, units: SourceUnit[], o: AnalyseOptions): Promise<AnalysisReport> {
    const lang = this.languageOf(language);
    if (!lang)
      throw new WardenError(
        "UNSUPPORTED_LANGUAGE",
        `language: analysis exists for python and javascript (got ${language})`,
      );
    const started = Date.now();
    let result: { findings: Finding[]; complete: boolean };
    if (lang === "javascript")
      result = analyseJavaScript(units, {
        maxUnitBytes: this.config.maxCodeBytes,
        maxTotalBytes: 4 * this.config.maxCodeBytes,
      });
    else result = await this.slot(o.userId, () => this.python(units));
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
    o: AnalyseOptions,
  ): Promise<PolicyVerdict> {
    if ((mode === "off" && !o.force) || !this.languageOf(language))
      return { mode, report: null, blocked: false };
    const report = await this.analyse(language, units, o);
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

  /**
   * Runs `task` when fewer than maxConcurrentAnalyses are running and the user
   * has fewer than ANALYSES_RUNNING_PER_USER; otherwise it waits its turn. A
   * long queue (overall or the user's) is SANDBOX_BUSY.
   */
  private async slot<T>(userId: string, task: () => Promise<T>): Promise<T> {
    const user = this.users.get(userId) ?? { running: 0, waiting: 0 };
    this.users.set(userId, user);
    if (
      this.running < this.config.policy.maxConcurrentAnalyses &&
      user.running < ANALYSES_RUNNING_PER_USER
    ) {
      this.running++;
      user.running++;
    } else {
      const busy = (message: string): WardenError => {
        this.forget(userId);
        return new WardenError("SANDBOX_BUSY", message, { details: { retryAfterSeconds: 1 } });
      };
      if (user.waiting >= ANALYSES_WAITING_PER_USER)
        throw busy(
          `analysis: at most ${ANALYSES_RUNNING_PER_USER} running and ${ANALYSES_WAITING_PER_USER} waiting analyses per user; retry later`,
        );
      if (this.waiting.length >= MAX_WAITING)
        throw busy(`analysis: ${MAX_WAITING} analyses already waiting; retry later`);
      user.waiting++;
      // start() (in dispatch) moves this one from waiting to running.
      await new Promise<void>((start) => this.waiting.push({ userId, start }));
    }
    try {
      return await task();
    } finally {
      this.running--;
      user.running--;
      this.forget(userId);
      this.dispatch();
    }
  }

  /** Starts waiting analyses, oldest first, skipping users already at their share. */
  private dispatch(): void {
    while (this.running < this.config.policy.maxConcurrentAnalyses) {
      const index = this.waiting.findIndex(
        (w) => (this.users.get(w.userId)?.running ?? 0) < ANALYSES_RUNNING_PER_USER,
      );
      if (index < 0) return;
      const [next] = this.waiting.splice(index, 1);
      const user = this.users.get(next!.userId)!;
      user.waiting--;
      user.running++;
      this.running++;
      next!.start();
    }
  }

  private forget(userId: string): void {
    const user = this.users.get(userId);
    if (user && user.running === 0 && user.waiting === 0) this.users.delete(userId);
  }
}

/** The MALICIOUS_CODE message for a blocked report: the first findings, named. */
export function blockedMessage(report: AnalysisReport): string {
  const high = report.findings.filter((f) => f.severity === "high");
  const shown = high.slice(0, 3).map(describeFinding).join("; ");
  return `refused by policy: ${high.length} high-severity finding(s): ${shown}${high.length > 3 ? "; ..." : ""}`;
}
