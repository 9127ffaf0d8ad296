/**
 * A session's code contexts: the default ones (one per kernel, started on
 * first use, what `/v1/sessions/:id/run` uses) and named ones made on request
 * (E2B's createCodeContext), each a kernel of its own with its own working
 * directory. Kept on the host: the agent's word on what exists is not needed
 * to bound them, and the bound is what keeps a session from starting
 * kernels (~50 MiB each) without end.
 */
import { randomUUID } from "node:crypto";
import type { ContextLanguage } from "../contract/session.js";
import { WardenError } from "../errors.js";

export interface CodeContextInfo {
  /** A default context's id is its kernel (python, javascript, bash); a named one's a UUID. */
  id: string;
  language: ContextLanguage;
  /** Relative to /workspace ("." for /workspace itself). */
  cwd: string;
  /** Made on request (closable), not one of the session's defaults. */
  named: boolean;
}

/** The default contexts, one per kernel (TypeScript cells run in the JavaScript one). */
const DEFAULTS: readonly ContextLanguage[] = ["python", "javascript", "bash"];

/** The kernel a language's cells run in when no context is named. */
export function defaultContextOf(language: ContextLanguage): string {
  return language === "typescript" ? "javascript" : language;
}

export class CodeContexts {
  private readonly named = new Map<string, CodeContextInfo>();
  /** Cells run per context since it (re)started: E2B's execution_count. */
  private readonly counts = new Map<string, number>();

  constructor(private readonly max: number) {}

  list(): CodeContextInfo[] {
    const defaults = DEFAULTS.map((language) => ({
      id: language,
      language,
      cwd: ".",
      named: false,
    }));
    return [...defaults, ...this.named.values()];
  }

  /** A context by id, or NOT_FOUND (own keys only: `__proto__` is no context). */
  get(id: string): CodeContextInfo {
    const named = this.named.get(id);
    if (named) return named;
    const language = DEFAULTS.find((l) => l === id);
    if (language) return { id, language, cwd: ".", named: false };
    throw new WardenError("NOT_FOUND", `context: ${id.slice(0, 64)} not found in this session`);
  }

  /**
   * Registers a new named context at once (so two creates at the same time
   * cannot both pass the bound), or QUOTA_EXCEEDED naming the limit. The
   * caller removes it again if the agent cannot make it.
   */
  reserve(language: ContextLanguage, cwd: string): CodeContextInfo {
    if (this.named.size >= this.max)
      throw new WardenError(
        "QUOTA_EXCEEDED",
        `contexts: at most ${this.max} named code contexts per session (sessions.maxContexts); remove one first`,
        { details: { limit: this.max, setting: "sessions.maxContexts" } },
      );
    const info = { id: randomUUID(), language, cwd, named: true };
    this.named.set(info.id, info);
    return info;
  }

  /** The context's cells count again from zero (it was restarted or closed). */
  reset(id: string): void {
    this.counts.delete(id);
  }

  remove(id: string): void {
    this.named.delete(id);
    this.counts.delete(id);
  }

  /** Counts one more cell in the context; the new count. */
  executed(id: string): number {
    const n = (this.counts.get(id) ?? 0) + 1;
    this.counts.set(id, n);
    return n;
  }
}
