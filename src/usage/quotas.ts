/**
 * Quota enforcement at submission (executions: REST, Piston, MCP, the
 * library; sessions). A request is refused with QUOTA_EXCEEDED when any rule
 * for its user or key is used up in the current UTC day or month.
 *
 * What is used comes from the hourly usage rows (written when a run's final
 * record is), read at most every `quotaCacheMs` per subject, plus the
 * executions this node admitted that have not finished yet: so an
 * `executions` quota is exact on one node, whatever the flood. A CPU-seconds
 * or egress quota learns a run's use only when it ends: it can be exceeded
 * by what the runs already admitted when it is reached use (at most
 * maxSandboxesPerUser running + maxQueuedPerUser queued runs of this user).
 * In a cluster each API node adds its own admissions only, and sees other
 * nodes' finishes up to `quotaCacheMs` late (docs/usage.md).
 */
import type { Audit } from "../audit/trail.js";
import { WardenError } from "../errors.js";
import type { QuotaRule, QuotaMetric } from "../store/quotas.js";
import type { QuotaStore, UsageStore } from "../store/store.js";
import type { UsageTotals } from "../store/usage.js";
import { periodReset, periodStart } from "./periods.js";

export type QuotaKind = "execution" | "session";

export interface QuotaActor {
  userId: string;
  keyId?: string | null | undefined;
}

/** A rule with what is used of it now and when it resets (the API's Quota). */
export interface QuotaView {
  id: string;
  subjectType: QuotaRule["subjectType"];
  subjectId: string;
  metric: QuotaMetric;
  period: QuotaRule["period"];
  limit: number;
  used: number;
  resetsAt: string;
}

/** Which metrics stop which kind of request. */
const APPLIES: Record<QuotaKind, readonly QuotaMetric[]> = {
  execution: ["executions", "cpuSeconds", "egressBytes"],
  session: ["sessionHours", "cpuSeconds", "egressBytes"],
};

export function metricValue(metric: QuotaMetric, t: UsageTotals): number {
  switch (metric) {
    case "executions":
      return t.executions;
    case "cpuSeconds":
      return t.cpuMs / 1000;
    case "sessionHours":
      return t.sessionMs / 3_600_000;
    case "egressBytes":
      return t.egressBytes;
  }
}

export interface QuotaEnforcerOptions {
  quotas: QuotaStore;
  usage: UsageStore;
  audit?: Audit | undefined;
  /** How long a subject's usage read is reused (ms). */
  cacheMs: number;
  /** Injectable for tests (a quota lifts at the period's reset). */
  now?: () => number;
}

/** Subjects' cached usage at most; the oldest goes first (a flood of users cannot grow memory). */
const CACHE_MAX = 10_000;

export class QuotaEnforcer {
  private readonly cache = new Map<string, { at: number; totals: Promise<UsageTotals> }>();
  /** Executions admitted here and not yet finished, per subject key. */
  private readonly pending = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly o: QuotaEnforcerOptions) {
    this.now = o.now ?? Date.now;
  }

  private subjectKey(rule: Pick<QuotaRule, "subjectType" | "subjectId">): string {
    return `${rule.subjectType}:${rule.subjectId}`;
  }

  private totals(rule: QuotaRule, now: number, fresh = false): Promise<UsageTotals> {
    const start = periodStart(rule.period, now);
    const key = `${this.subjectKey(rule)}:${start}`;
    const hit = this.cache.get(key);
    if (!fresh && hit && now - hit.at < this.o.cacheMs) return hit.totals;
    const subject =
      rule.subjectType === "key" ? { keyId: rule.subjectId } : { userId: rule.subjectId };
    const totals = this.o.usage.totals(subject, start, periodReset(rule.period, now));
    totals.catch(() => this.cache.delete(key));
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { at: now, totals });
    return totals;
  }

  /** What the stored rows say is used of a rule. */
  private async stored(rule: QuotaRule, now: number, fresh = false): Promise<number> {
    return metricValue(rule.metric, await this.totals(rule, now, fresh));
  }

  /** This node's admitted, unfinished executions that a rule counts. */
  private pendingOf(rule: QuotaRule): number {
    return rule.metric === "executions" ? (this.pending.get(this.subjectKey(rule)) ?? 0) : 0;
  }

  /** A rule as the API shows it (usage read afresh). */
  async view(rule: QuotaRule): Promise<QuotaView> {
    const now = this.now();
    return {
      id: rule.id,
      subjectType: rule.subjectType,
      subjectId: rule.subjectId,
      metric: rule.metric,
      period: rule.period,
      limit: rule.limit,
      used: (await this.stored(rule, now, true)) + this.pendingOf(rule),
      resetsAt: new Date(periodReset(rule.period, now)).toISOString(),
    };
  }

  /**
   * Admits a request or throws QUOTA_EXCEEDED. For an execution, call the
   * returned release once it has finished (its usage is then in the rows).
   */
  async admit(actor: QuotaActor, kind: QuotaKind): Promise<() => void> {
    const rules = (await this.o.quotas.forActor(actor.userId, actor.keyId ?? null)).filter((r) =>
      APPLIES[kind].includes(r.metric),
    );
    if (rules.length === 0) return () => undefined;
    const now = this.now();
    const stored = await Promise.all(rules.map((r) => this.stored(r, now)));
    // From here to the count below nothing awaits: concurrent admissions see each other's.
    for (const [i, rule] of rules.entries()) {
      const used = stored[i]! + this.pendingOf(rule);
      if (used >= rule.limit) this.refuse(rule, used, actor, kind, now);
    }
    if (kind !== "execution") return () => undefined;
    const counted = rules.filter((r) => r.metric === "executions").map((r) => this.subjectKey(r));
    const subjects = new Set(rules.map((r) => this.subjectKey(r)));
    for (const k of counted) this.pending.set(k, (this.pending.get(k) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const k of counted) {
        const left = (this.pending.get(k) ?? 1) - 1;
        if (left > 0) this.pending.set(k, left);
        else this.pending.delete(k);
      }
      // Its row is written now (executions, CPU, egress): the next check must read
      // it, not a copy from before it ran.
      for (const k of subjects)
        for (const c of [...this.cache.keys()]) if (c.startsWith(`${k}:`)) this.cache.delete(c);
    };
  }

  /**
   * Why a running execution must stop: a CPU-seconds or egress rule that the
   * stored use plus what this run has spent so far reaches. Audited once per
   * call that says so.
   */
  async exhausted(
    actor: QuotaActor,
    spent: { cpuMs: number; egressBytes: number },
  ): Promise<string | null> {
    const rules = (await this.o.quotas.forActor(actor.userId, actor.keyId ?? null)).filter(
      (r) => r.metric === "cpuSeconds" || r.metric === "egressBytes",
    );
    const now = this.now();
    for (const rule of rules) {
      const own = rule.metric === "cpuSeconds" ? spent.cpuMs / 1000 : spent.egressBytes;
      const used = (await this.stored(rule, now)) + own;
      if (used < rule.limit) continue;
      const why = `quota: ${rule.metric} per ${rule.period} is used up (${Math.round(used * 1000) / 1000} of ${rule.limit}) while this run went on`;
      this.audited(actor, `run stopped: ${why}`, rule, used);
      return why;
    }
    return null;
  }

  /** A rule reached, in the audit trail (a refusal, a run stopped). */
  private audited(
    actor: QuotaActor,
    message: string,
    rule: QuotaRule,
    used: number,
    more: Record<string, unknown> = {},
  ): void {
    this.o.audit?.({
      userId: actor.userId,
      level: "warn",
      event: "quota_exceeded",
      message,
      data: {
        quotaId: rule.id,
        metric: rule.metric,
        period: rule.period,
        limit: rule.limit,
        used,
        ...more,
      },
    });
  }

  private refuse(
    rule: QuotaRule,
    used: number,
    actor: QuotaActor,
    kind: QuotaKind,
    now: number,
  ): never {
    const reset = periodReset(rule.period, now);
    const resetsAt = new Date(reset).toISOString();
    this.audited(
      actor,
      `${kind} refused: ${rule.metric} per ${rule.period} of ${rule.subjectType} ${rule.subjectId} used ${used} of ${rule.limit}`,
      rule,
      used,
      { kind, keyId: actor.keyId ?? null },
    );
    throw new WardenError(
      "QUOTA_EXCEEDED",
      `quota: ${rule.metric} per ${rule.period} is used up (${used} of ${rule.limit}); it resets at ${resetsAt}`,
      {
        details: {
          metric: rule.metric,
          period: rule.period,
          limit: rule.limit,
          used,
          resetsAt,
          retryAfterSeconds: Math.max(1, Math.ceil((reset - now) / 1000)),
        },
      },
    );
  }
}

/** The enforcer of a config and store (what the composition roots build). */
export function quotaEnforcer(
  config: { usage: { quotaCacheMs: number } },
  store: { quotas: QuotaStore; usage: UsageStore },
  audit?: Audit,
): QuotaEnforcer {
  return new QuotaEnforcer({
    quotas: store.quotas,
    usage: store.usage,
    audit,
    cacheMs: config.usage.quotaCacheMs,
  });
}
