/** Analysis metrics that count into a plain record, for tests. */
import type { AnalysisMetrics } from "../../src/policy/analyzer.js";

export function counting(): AnalysisMetrics & { counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  const add = (name: string): void => void (counts[name] = (counts[name] ?? 0) + 1);
  return {
    counts,
    analysisCache: (r) => add(`cache_${r}`),
    analyserRestart: (r) => add(`restart_${r}`),
    analyserRun: (p) => add(`run_${p}`),
  };
}
