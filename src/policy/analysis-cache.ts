/**
 * Analysis results by content digest: the same code, analysed again by the
 * same user under the same rules, is answered from memory instead of from a
 * Python sandbox. A least-recently-used map bounded both by entries and by
 * bytes, so no sequence of requests grows it past its bound; the worst a flood
 * of distinct code can do is evict entries, which only costs their owners a
 * fresh analysis (never a wrong answer: a key is a sha256 of all it depends on).
 */
import { createHash } from "node:crypto";
import type { SourceUnit } from "./findings.js";
import type { UnitAnalysis } from "./analyser-output.js";

export interface AnalysisCacheOptions {
  /** @default 1000 */
  maxEntries: number;
  /** Estimated bytes of all entries (findings as JSON plus the key). @default 16 MiB */
  maxBytes: number;
}

/** What one entry costs beyond its findings: the key, the Map slot, the objects. */
const ENTRY_OVERHEAD_BYTES = 256;

export interface CacheKeyInput {
  /** The version of the rules that answered (analyser code and its settings). */
  ruleVersion: string;
  /**
   * Entries are per user: a shared entry would tell one tenant, by a faster
   * answer, that another had already submitted exactly this code.
   */
  userId: string;
  language: string;
  units: readonly SourceUnit[];
}

/**
 * The digest of everything a report depends on: rules, user, language and
 * each unit's cell, kind and exact source. JSON keeps the parts apart (no
 * two inputs serialise alike), and escapes lone surrogates, so distinct
 * strings never share a key.
 */
export function analysisKey(k: CacheKeyInput): string {
  const units = k.units.map((u) => [u.cell, u.kind ?? "file", u.source]);
  return createHash("sha256")
    .update(JSON.stringify([k.ruleVersion, k.userId, k.language, units]))
    .digest("hex");
}

interface Entry {
  value: UnitAnalysis;
  bytes: number;
}

export class AnalysisCache {
  // A Map iterates in insertion order: re-inserting on a hit makes the first key the least recent.
  private readonly entries = new Map<string, Entry>();
  private totalBytes = 0;

  constructor(private readonly o: AnalysisCacheOptions) {}

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get(key: string): UnitAnalysis | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return copy(entry.value);
  }

  /**
   * Keeps a complete analysis. An incomplete one (a crash, a timeout, a limit)
   * is never kept: it depends on the moment, not only on the code. One entry
   * larger than an eighth of the budget is not kept either, so a single huge
   * report cannot empty the cache for everyone.
   */
  set(key: string, value: UnitAnalysis): void {
    if (!value.complete || this.o.maxEntries < 1) return;
    const bytes = Buffer.byteLength(JSON.stringify(value.findings)) + ENTRY_OVERHEAD_BYTES;
    if (bytes > this.o.maxBytes / 8) return;
    this.delete(key);
    this.entries.set(key, { value: copy(value), bytes });
    this.totalBytes += bytes;
    while (this.entries.size > this.o.maxEntries || this.totalBytes > this.o.maxBytes) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
    this.totalBytes = 0;
  }

  private delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.totalBytes -= entry.bytes;
  }
}

/** Callers map and annotate findings: each gets its own copy, the cached one stays as it was. */
function copy(value: UnitAnalysis): UnitAnalysis {
  return { complete: value.complete, findings: value.findings.map((f) => ({ ...f })) };
}
