/** Prometheus metrics of the service (prom-client), fed by scheduler lifecycle events. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { PoolStats } from "../sandbox/pool.js";
import type { EgressEvent } from "../network/proxy.js";
import type { LifecycleEvent } from "./scheduler.js";
import type { ExecutionUsage } from "../contract/usage.js";

/**
 * The class of a user in the usage counters: never the raw user id (its
 * cardinality is the number of users); src/usage/user-class.ts gives the
 * key's scope class or a configured mapping.
 */
export type UserClassifier = (userId: string, keyId: string | undefined) => Promise<string>;

export class Metrics {
  readonly registry = new Registry();
  private readonly executions;
  private readonly duration;
  private readonly queueWait;
  private readonly rejections;
  private readonly retries;
  private readonly egressConnections;
  private readonly egressBytes;
  private readonly analysisCacheLookups;
  private readonly analyserRestarts;
  private readonly analyserRuns;
  private readonly usageCounters;
  /** Set by the composition root; by default every user is `user` (anonymous: `anonymous`). */
  classify: UserClassifier = async (userId) => (userId === "anonymous" ? "anonymous" : "user");

  constructor(gauges: {
    queueDepth: () => number;
    activeSandboxes: () => number;
    memoryReservedMb: () => number;
  }) {
    const registers = [this.registry];
    // "warden_" gives warden_process_* and warden_nodejs_*: every series of this
    // endpoint in one namespace, and no clash with the plain process_* of an
    // application that embeds Warden as a library and exports its own.
    collectDefaultMetrics({ register: this.registry, prefix: "warden_" });
    this.executions = new Counter({
      name: "warden_executions_total",
      help: "Finished executions by language and final status.",
      labelNames: ["language", "status"] as const,
      registers,
    });
    this.duration = new Histogram({
      name: "warden_execution_duration_seconds",
      help: "Wall time of the program (compile excluded), by language.",
      labelNames: ["language"] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers,
    });
    this.queueWait = new Histogram({
      name: "warden_queue_wait_seconds",
      help: "Time executions spent waiting for a sandbox.",
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
      registers,
    });
    this.rejections = new Counter({
      name: "warden_rejections_total",
      help: "Requests refused, by reason (queue_full, rate_limit, unauthorized, invalid_request...).",
      labelNames: ["reason"] as const,
      registers,
    });
    this.retries = new Counter({
      name: "warden_retries_total",
      help: "Retries of Warden's own transient failures.",
      registers,
    });
    this.egressConnections = new Counter({
      name: "warden_egress_connections_total",
      help: "Connections through the egress proxy, by decision.",
      labelNames: ["decision"] as const,
      registers,
    });
    this.egressBytes = new Counter({
      name: "warden_egress_bytes_total",
      help: "Bytes through the egress proxy, both ways.",
      registers,
    });
    // Sampled at scrape time from the scheduler.
    const sampled: [name: string, help: string, read: () => number][] = [
      ["warden_queue_depth", "Executions waiting for a sandbox.", gauges.queueDepth],
      ["warden_active_sandboxes", "Executions running now.", gauges.activeSandboxes],
      [
        "warden_memory_reserved_bytes",
        "Sum of the memory limits of running executions.",
        () => gauges.memoryReservedMb() * 1024 * 1024,
      ],
    ];
    for (const [name, help, read] of sampled)
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    this.analysisCacheLookups = new Counter({
      name: "warden_analysis_cache_total",
      help: "Static analysis cache lookups, by result (hit: no analyser ran).",
      labelNames: ["result"] as const,
      registers,
    });
    this.analyserRestarts = new Counter({
      name: "warden_analyser_restarts_total",
      help: "Warm Python analysers replaced, by reason (crash, timeout, garbled, oversized, max_requests, max_age...).",
      labelNames: ["reason"] as const,
      registers,
    });
    const usageCounter = (name: string, help: string) =>
      new Counter({ name, help, labelNames: ["class"] as const, registers });
    this.usageCounters = {
      executions: usageCounter(
        "warden_usage_executions_total",
        "Finished executions by user class (docs/usage.md).",
      ),
      cpu: usageCounter("warden_usage_cpu_seconds_total", "CPU-seconds used, by user class."),
      memory: usageCounter(
        "warden_usage_memory_mb_seconds_total",
        "Memory in use integrated over time (MiB-seconds), by user class.",
      ),
      egress: usageCounter("warden_usage_egress_bytes_total", "Egress bytes, by user class."),
      output: usageCounter("warden_usage_output_bytes_total", "Output bytes, by user class."),
    };
    this.analyserRuns = new Counter({
      name: "warden_analyser_runs_total",
      help: "Python analyses that reached an analyser, by path (warm: a started analyser; cold: a new sandbox).",
      labelNames: ["path"] as const,
      registers,
    });
  }

  egress(event: EgressEvent): void {
    this.egressConnections.inc({ decision: event.decision }, event.count);
    if (event.bytes > 0) this.egressBytes.inc(event.bytes);
  }

  reject(reason: string): void {
    this.rejections.inc({ reason });
  }

  observe(event: LifecycleEvent): void {
    switch (event.type) {
      case "queued":
        return;
      case "started":
        this.queueWait.observe(
          ((event.execution.startedAt ?? Date.now()) - event.execution.createdAt) / 1000,
        );
        return;
      case "retried":
        this.retries.inc();
        return;
      case "finished": {
        const language = event.execution.request.language;
        this.executions.inc({ language, status: event.result.status });
        if (event.execution.startedAt !== null)
          this.duration.observe({ language }, event.result.metrics.executionTimeMs / 1000);
        const usage = event.result.metrics.usage;
        if (usage)
          this.classify(event.execution.userId, event.execution.request.keyId).then(
            (c) => this.countUsage(c, usage),
            () => undefined,
          );
        return;
      }
      case "rejected":
        this.rejections.inc({ reason: event.reason });
        return;
    }
  }

  private countUsage(userClass: string, u: ExecutionUsage): void {
    const labels = { class: userClass };
    this.usageCounters.executions.inc(labels);
    this.usageCounters.cpu.inc(labels, u.cpuMs / 1000);
    this.usageCounters.memory.inc(labels, u.memoryMbMs / 1000);
    this.usageCounters.egress.inc(labels, u.egressBytes);
    this.usageCounters.output.inc(labels, u.outputBytes);
  }

  analysisCache(result: "hit" | "miss"): void {
    this.analysisCacheLookups.inc({ result });
  }

  analyserRestart(reason: string): void {
    this.analyserRestarts.inc({ reason });
  }

  analyserRun(path: "warm" | "cold"): void {
    this.analyserRuns.inc({ path });
  }

  /** Samples the number of live warm analysers at scrape time. */
  watchWarmAnalysers(read: () => number): void {
    new Gauge({
      name: "warden_warm_analysers",
      help: "Warm Python analysers alive now (each in its own sandbox).",
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** The warm pool, sampled at scrape time, by language (a bounded label). */
  watchPool(read: () => PoolStats[]): void {
    const byLanguage = (pick: (s: PoolStats) => number): Map<string, number> => {
      const out = new Map<string, number>();
      for (const s of read()) {
        const language = s.key.split("|")[0] ?? "";
        out.set(language, (out.get(language) ?? 0) + pick(s));
      }
      return out;
    };
    const counted = new Map<string, number>();
    const counter = (name: string, help: string, pick: (s: PoolStats) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ["language"],
        registers: [this.registry],
        collect() {
          for (const [language, total] of byLanguage(pick)) {
            const key = `${name}|${language}`;
            const delta = total - (counted.get(key) ?? 0);
            if (delta > 0) this.inc({ language }, delta);
            counted.set(key, Math.max(total, counted.get(key) ?? 0));
          }
        },
      });
    };
    counter("warden_pool_hits_total", "Runs that took a sandbox started ahead.", (s) => s.hits);
    counter("warden_pool_misses_total", "Runs that found no started sandbox.", (s) => s.misses);
    new Gauge({
      name: "warden_pool_ready",
      help: "Sandboxes started ahead and waiting for a request.",
      labelNames: ["language"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [language, n] of byLanguage((s) => s.ready)) this.set({ language }, n);
      },
    });
    new Gauge({
      name: "warden_pool_memory_bytes",
      help: "Memory the started sandboxes use, read from their cgroups.",
      registers: [this.registry],
      collect() {
        this.set(read().reduce((sum, s) => sum + s.memoryBytes, 0));
      },
    });
  }
}
