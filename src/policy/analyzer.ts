/**
 * The analysis service: picks the analyser for a language, bounds how many
 * analysis sandboxes run at once, and applies a policy mode (server default,
 * overridden per API key) to the report. Repeated code is answered from a
 * cache; Python goes to a warm analyser when one is free, else runs cold.
 */
import type { Logger } from "../audit/logger.js";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import { defaultNativeDir, type SandboxHost } from "../sandbox/host.js";
import type { SandboxLimits } from "../sandbox/types.js";
import type { AnalysisReport, Finding, PolicyMode } from "../contract/policy.js";
import { describeFinding, isBlocked, sortFindings, type SourceUnit } from "./findings.js";
import { AnalysisCache, analysisKey } from "./analysis-cache.js";
import {
  failedAnalysis,
  MAX_ANSWER_BYTES,
  toUnitAnalysis,
  type UnitAnalysis,
} from "./analyser-output.js";
import { analyseJavaScript } from "./javascript.js";
import { analysePython, loadRuleSet } from "./python.js";
import { WarmAnalyser } from "./warm-analyser.js";
import { WarmAnalyserPool, type RestartReason } from "./warm-pool.js";

/** Languages with an analyser, by canonical name (aliases resolve through the registry). */
const ANALYSED: Record<string, "python" | "javascript"> = {
  python: "python",
  javascript: "javascript",
};

const MAX_WAITING = 100;
const MiB = 1024 * 1024;
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

/** What the analyzer counts (Metrics implements it). */
export interface AnalysisMetrics {
  analysisCache(result: "hit" | "miss"): void;
  analyserRestart(reason: RestartReason): void;
  /** A Python analysis that reached an analyser: a warm one, or a cold sandbox. */
  analyserRun(path: "warm" | "cold"): void;
}

export interface AnalyzerOptions {
  /**
   * Keep warm Python analysers (policy.warmAnalysers of them) for the life of
   * the Analyzer; then close() must be called. Off for one-shot uses (the CLI).
   * @default false
   */
  warm?: boolean;
  metrics?: AnalysisMetrics;
  logger?: Logger;
  /** A shared cache (tests); by default each Analyzer has its own. */
  cache?: AnalysisCache;
}

/**
 * Recycling bounds of a warm analyser (see RestartReason for why): a fresh
 * process costs one cold start, so these are generous.
 */
const WARM_MAX_REQUESTS = 500;
const WARM_MAX_AGE_MS = 10 * 60_000;

/** Bumped when the JavaScript rules (javascript.ts) change: part of every cache key. */
const JAVASCRIPT_RULES_VERSION = "js-1";

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

  readonly cache: AnalysisCache;
  private readonly pool: WarmAnalyserPool | null;
  private readonly metrics: AnalysisMetrics | undefined;
  private readonly nativeDir: string;

  constructor(
    private readonly config: Config,
    private readonly host: SandboxHost,
    private readonly registry: RuntimeRegistry,
    options: AnalyzerOptions = {},
  ) {
    const p = config.policy;
    this.metrics = options.metrics;
    this.nativeDir = config.sandbox.nativeDir ?? defaultNativeDir();
    this.cache =
      options.cache ??
      new AnalysisCache({ maxEntries: p.analysisCacheEntries, maxBytes: p.analysisCacheMb * MiB });
    this.pool =
      options.warm && p.warmAnalysers > 0
        ? new WarmAnalyserPool({
            size: p.warmAnalysers,
            requestTimeoutMs: p.analysisTimeout * 1000,
            maxRequests: WARM_MAX_REQUESTS,
            maxAgeMs: WARM_MAX_AGE_MS,
            logger: options.logger,
            onRestart: (reason) => this.metrics?.analyserRestart(reason),
            start: async () =>
              WarmAnalyser.start({
                host: this.host,
                registry: this.registry,
                rules: await loadRuleSet(this.nativeDir),
                limits: this.limits(),
                // Past its age it is retired when next taken; the kernel's limit is the backstop.
                lifetimeMs: WARM_MAX_AGE_MS + 2 * this.limits().timeoutMs,
                startTimeoutMs: this.limits().timeoutMs,
                maxRequests: WARM_MAX_REQUESTS,
              }),
          })
        : null;
  }

  /** Starts the warm analysers now, off any request's path. */
  prewarm(): void {
    this.pool?.fill();
  }

  /** The warm analysers' sandboxes (leak checks). */
  warmSandboxes(): { id: string; uid: number }[] {
    return this.pool?.sandboxes() ?? [];
  }

  /** Stops the warm analysers and waits until their sandboxes are gone. Safe to call twice. */
  async close(): Promise<void> {
    await this.pool?.close();
  }

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
    // The rules' version is part of the key: analyze.py's digest, the JS rules' and their bounds.
    const ruleVersion =
      lang === "python"
        ? (await loadRuleSet(this.nativeDir)).version
        : `${JAVASCRIPT_RULES_VERSION}:${this.config.maxCodeBytes}`;
    const key = analysisKey({ ruleVersion, userId: o.userId, language: lang, units });
    let result: { findings: Finding[]; complete: boolean } | undefined = this.cache.get(key);
    this.metrics?.analysisCache(result ? "hit" : "miss");
    if (!result) {
      if (lang === "javascript")
        result = analyseJavaScript(units, {
          maxUnitBytes: this.config.maxCodeBytes,
          maxTotalBytes: 4 * this.config.maxCodeBytes,
        });
      else result = await this.slot(o.userId, () => this.python(units, o.userId));
      this.cache.set(key, result);
    }
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

  /** Warm when an analyser is free; cold otherwise, or when the warm one broke. */
  private async python(units: SourceUnit[], userId: string): Promise<UnitAnalysis> {
    const warm = await this.pool?.analyse(userId, units);
    if (warm) this.metrics?.analyserRun("warm");
    if (warm && "output" in warm) return toUnitAnalysis(warm.output);
    // A hang would hang a cold run too: fail closed now rather than wait twice.
    if (warm?.failure === "timeout")
      return failedAnalysis(
        units,
        "analysis ended timeout (the analyser's sandbox hit a limit): this code could not be checked",
      );
    this.metrics?.analyserRun("cold");
    return analysePython(units, {
      host: this.host,
      registry: this.registry,
      rules: await loadRuleSet(this.nativeDir),
      limits: this.limits(),
    });
  }

  /** The limits of one analysis, warm or cold. */
  private limits(): SandboxLimits {
    const p = this.config.policy;
    return {
      timeoutMs: p.analysisTimeout * 1000,
      killGraceMs: 0,
      memoryMb: p.analysisMemoryMb,
      cpuPercent: this.config.defaults.cpuPercent,
      diskMb: 4,
      pids: 8,
      outputBytes: MAX_ANSWER_BYTES,
      openFiles: 64,
    };
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
