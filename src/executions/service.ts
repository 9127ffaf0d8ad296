/**
 * The execution service: validates and queues runs, and runs them in the
 * sandbox engine under the scheduler's rules. It only says what happened (the
 * scheduler's lifecycle events); the composition root (src/warden.ts) decides
 * what is recorded, audited and counted of it. The HTTP layer is one client of
 * it; an application can use it in process through the same methods (the
 * spec's library API).
 */
import { totalmem } from "node:os";
import type { Logger } from "../audit/logger.js";
import type { Audit } from "../audit/trail.js";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import type { ExecutionResult } from "../contract/result.js";
import { executeCode } from "../runtimes/execute.js";
import { judgeCode } from "../judging/judge.js";
import { loadSuite, suiteCases } from "../judging/suites.js";
import { judgeMemoryMb } from "../judging/types.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { SystemMetrics, UserMetrics } from "../contract/metrics.js";
import type { AuditEvent, ExecutionRecord } from "../store/records.js";
import type { ArtifactStore, RecordStore, Store } from "../store/store.js";
import type { Execution, ExecutionRequest, ExecutionSource } from "./execution.js";
import {
  ARTIFACT_DIR,
  collectFailed,
  keepArtifacts,
  readDeadWorkspace,
  type ArtifactCandidate,
  type ArtifactLimits,
  type Collected,
} from "../artifacts/collect.js";
import type { EgressHook } from "./egress-accounting.js";
import type { QuotaGate } from "./frontend.js";
import type { LiveInput } from "./frontend.js";
import type { Metrics } from "./metrics.js";
import { resolveKeyEgress, type EgressPolicy } from "../network/policy.js";
import { EnvironmentStore } from "../environments/store.js";
import { toExecutionRequest, type CreateExecutionInput } from "./request.js";
import { checkTierAvailable, tiersOf, type KeyIsolation } from "./isolation.js";
import type { Isolation } from "../contract/isolation.js";
import { Scheduler, TransientError, type AdmissionDecision } from "./scheduler.js";

export interface ExecutionServiceOptions {
  config: Config;
  host: SandboxHost;
  registry: RuntimeRegistry;
  /** Where records, events and artifacts are kept (SQLite or PostgreSQL). */
  store: Store;
  logger: Logger;
  /** The audit trail, shared with the rest of the service. */
  audit: Audit;
  /** Prometheus metrics; given, not owned (they observe the scheduler from outside). */
  metrics: Metrics;
  /** Accounting for a run's egress (metrics and audit per connection). */
  egress: EgressHook;
  /** The URL an interface serves an execution's artifact at: the core builds none. */
  artifactUrl: (executionId: string, name: string) => string;
  /**
   * A cluster worker: records are shared by every node, so none is an orphan
   * of this one (the cluster's reaper ends a dead worker's runs instead).
   */
  clustered?: boolean;
  /** Quotas per user and key (src/usage/quotas.ts); absent: none enforced. */
  quotas?: QuotaGate | undefined;
}

/** The spec's library call: `execute({code, language, timeout, retryOnFailure}, userId)`. */
export interface ExecuteOptions {
  code: string;
  language: string;
  /** Seconds. @default config.defaultTimeout */
  timeout?: number;
  /** @default true */
  retryOnFailure?: boolean;
  stdin?: string;
  args?: string[];
  limits?: CreateExecutionInput["limits"];
  /** Egress allowlist within the server's policy. */
  network?: CreateExecutionInput["network"];
  /** A prebuilt environment (GET /v1/environments). @default "default" */
  environment?: string;
  /** Test cases: the program runs once per case, compiled once (docs/judging.md). */
  tests?: CreateExecutionInput["tests"];
  /** How outputs are compared. @default { mode: "trailing_whitespace" } */
  compare?: CreateExecutionInput["compare"];
  /** Skip the cases after the first that fails. @default false */
  stopOnFirstFailure?: boolean;
  /** The isolation tier. @default config.sandbox.isolation */
  isolation?: Isolation;
}

export type { SystemMetrics, UserMetrics };

const COMPILE_MEMORY_FLOOR_MB = 0;

export class ExecutionService {
  readonly scheduler: Scheduler;
  readonly records: RecordStore;
  readonly audit: Audit;
  readonly metrics: Metrics;
  readonly artifacts: ArtifactStore;
  readonly environments: EnvironmentStore;
  readonly memoryBudgetMb: number;
  readonly quotas: QuotaGate | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ExecutionServiceOptions) {
    const { config } = o;
    this.records = o.store.records;
    this.quotas = o.quotas;
    this.audit = o.audit;
    this.metrics = o.metrics;
    this.artifacts = o.store.artifacts;
    this.environments = new EnvironmentStore(config.dataDir);
    this.memoryBudgetMb = config.memoryBudgetMB || Math.floor((totalmem() / 1024 / 1024) * 0.8);
    this.scheduler = new Scheduler({
      maxConcurrent: config.maxConcurrentSandboxes,
      maxPerUser: config.maxSandboxesPerUser,
      maxQueueSize: config.maxQueueSize,
      maxQueuedPerUser: config.maxQueuedPerUser,
      queueTimeoutMs: config.queueTimeout * 1000,
      memoryBudgetMb: this.memoryBudgetMb,
      maxRetries: config.maxRetries,
      retryBackoffMs: config.retryBackoffMs,
      reservationMb: (r) => this.reservationMb(r),
      memory: {
        mode: config.memoryBudgetMode,
        admissionMb: config.memoryAdmissionMB,
        pollMs: config.memoryPollMs,
        readUsageMb: async () => (await o.host.cgroups.usageBytes()) / 1024 / 1024,
        onReadError: (error) =>
          o.logger.warn(
            { err: error },
            "cannot read the sandboxes' memory use; the budget keeps its last reading",
          ),
      },
      run: (execution, signal) => this.runOnce(execution, signal),
    });
    // In a cluster the reaper settles what a dead worker left; nothing here is orphaned.
    if (!o.clustered)
      void this.records
        .failOrphans()
        .then((orphans) => {
          if (orphans.length > 0)
            o.logger.warn(
              { count: orphans.length },
              "marked executions left in progress by a stopped Warden as error",
            );
        })
        .catch((error: unknown) => o.logger.error({ err: error }, "cannot fail orphaned records"));
    this.expireOld();
    this.retentionTimer = setInterval(() => this.expireOld(), 3_600_000);
    this.retentionTimer.unref();
  }

  private expireOld(): void {
    const retentionMs = this.o.config.retentionDays * 86_400_000;
    void this.records
      .expire(retentionMs)
      .then((removed) => {
        if (removed.executions + removed.events > 0)
          this.o.logger.info({ removed }, "expired old records");
      })
      .catch((error: unknown) => this.o.logger.error({ err: error }, "record expiry failed"));
    void this.o.store.usage
      .expire(this.o.config.usage.retentionDays * 86_400_000)
      .catch((error: unknown) => this.o.logger.error({ err: error }, "usage expiry failed"));
    void this.o.store.sessions
      .expire(retentionMs)
      .catch((error: unknown) => this.o.logger.error({ err: error }, "session expiry failed"));
    void this.artifacts
      .expire(this.o.config.artifactRetentionHours * 3_600_000)
      .then((n) => n > 0 && this.o.logger.info({ removed: n }, "expired old artifacts"))
      .catch((error: unknown) => this.o.logger.error({ err: error }, "artifact expiry failed"));
  }

  /** The artifact limits of one run, from the config. */
  artifactLimits(): ArtifactLimits {
    const c = this.o.config;
    return {
      maxBytes: c.maxArtifactSizeMB * 1024 * 1024,
      maxCount: c.maxArtifactsPerExecution,
      maxTotalBytes: c.maxArtifactsTotalMB * 1024 * 1024,
      allowedTypes: c.artifactTypes,
    };
  }

  /**
   * Stores what a run left for `ownerId` (an execution or a session) and audits
   * every refusal. `urlOf` gives each artifact's download URL.
   */
  async keepArtifacts(
    candidates: ArtifactCandidate[],
    owner: { ownerId: string; userId: string; executionId?: string },
    urlOf: (name: string) => string,
  ): Promise<Collected> {
    const kept = await keepArtifacts(candidates, {
      ...owner,
      limits: this.artifactLimits(),
      store: this.artifacts,
      urlOf,
    });
    for (const r of kept.rejected)
      this.audit({
        executionId: owner.executionId,
        userId: owner.userId,
        level: "warn",
        event: "artifact_rejected",
        message: `artifact ${r.name} refused: ${r.reason}`,
        data: { owner: owner.ownerId, name: r.name, reason: r.reason },
      });
    return kept;
  }

  /**
   * The most memory an execution holds at once: its run, or its compile step
   * if larger; a test-case run, the largest of its compile, its cases and its
   * checker (one sandbox at a time).
   */
  private reservationMb(request: ExecutionRequest): number {
    const compileMb = (language: string, asked?: number): number => {
      const def = this.o.registry.lookup(language);
      return def?.compile ? (asked ?? def.compileLimits.memoryMb ?? COMPILE_MEMORY_FLOOR_MB) : 0;
    };
    return Math.max(
      request.limits.memoryMb,
      compileMb(request.language, request.compileLimits?.memoryMb),
      judgeMemoryMb(request.judge, (language) => compileMb(language)),
    );
  }

  private async runOnce(execution: Execution, signal: AbortSignal): Promise<ExecutionResult> {
    const r = execution.request;
    let result: ExecutionResult;
    // A running execution holds its environment: `warden env rm` refuses it meanwhile.
    const release = r.environment
      ? await this.environments.acquire(r.environment.name)
      : async () => undefined;
    try {
      result = r.judge
        ? await this.judge(execution, r.judge, signal)
        : await executeCode(this.o.host, this.o.registry, {
            id: execution.id,
            language: r.language,
            files: r.files,
            entrypoint: r.entrypoint,
            stdin: r.stdinStream ?? r.stdin,
            args: r.args,
            env: r.env,
            limits: r.limits,
            compileLimits: r.compileLimits,
            onStage: (event) => execution.emit("stage", event),
            signal,
            onOutput: (chunk) => execution.pushOutput(chunk),
            onBox: (box) => (execution.boxId = box.id),
            network: r.network
              ? this.o.egress(r.network, { executionId: execution.id, userId: execution.userId })
              : undefined,
            environment: r.environment,
            isolation: r.isolation,
            artifacts:
              this.o.config.maxArtifactsPerExecution > 0
                ? {
                    // Files named in the request may be anywhere in the workspace.
                    keepIf: (r.artifacts ?? []).length > 0 ? "." : ARTIFACT_DIR,
                    // The program has run: a failure here must not make it run again (a retry).
                    collect: async (workspace) =>
                      this.keepArtifacts(
                        await readDeadWorkspace(workspace, this.artifactLimits(), r.artifacts),
                        {
                          ownerId: execution.id,
                          userId: execution.userId,
                          executionId: execution.id,
                        },
                        (name) => this.o.artifactUrl(execution.id, name),
                      ).catch(collectFailed),
                  }
                : undefined,
          });
    } catch (error) {
      if (error instanceof WardenError) throw error;
      // A spawn, cgroup or mount failure of Warden's own: the program never ran.
      throw new TransientError(`sandbox failed: ${(error as Error).message}`, error);
    } finally {
      await release();
    }
    const neverRan =
      result.exitCode === null && result.signal === null && !result.stdout && !result.stderr;
    if (result.status === "error" && neverRan)
      throw new TransientError(result.error?.message ?? "sandbox failed");
    return result;
  }

  /** A test-case run: compiled once, then each case in a fresh sandbox (src/judging/). */
  private async judge(
    execution: Execution,
    spec: NonNullable<ExecutionRequest["judge"]>,
    signal: AbortSignal,
  ): Promise<ExecutionResult> {
    const r = execution.request;
    const bounds = this.o.config.judging;
    const judge = spec.suiteId
      ? {
          ...spec,
          cases: suiteCases(
            await loadSuite(this.artifacts, spec.suiteId, execution.userId, bounds),
          ),
        }
      : spec;
    return judgeCode(this.o.host, this.o.registry, {
      id: execution.id,
      language: r.language,
      files: r.files,
      entrypoint: r.entrypoint,
      env: r.env,
      limits: r.limits,
      compileLimits: r.compileLimits,
      signal,
      network: r.network
        ? this.o.egress(r.network, { executionId: execution.id, userId: execution.userId })
        : undefined,
      environment: r.environment,
      isolation: r.isolation,
      judge,
      maxCompiledBytes: bounds.maxCompiledMb * 1024 * 1024,
      caseOutputBytes: bounds.caseOutputBytes,
      maxRunMs: bounds.maxRunSeconds * 1000,
      stopIf: this.quotas?.exhausted
        ? (used) =>
            this.quotas!.exhausted!(
              { userId: execution.userId, keyId: r.keyId ?? null },
              { cpuMs: used.cpuMs, egressBytes: used.egressBytes },
            )
        : undefined,
      onCase: (c) => execution.pushTest(c),
      onBox: (box) => (execution.boxId = box.id),
      // "One compile in the audit trail": a judge run's compile step is audited with its case count.
      onCompile: ({ cases, timeMs }) =>
        this.audit({
          executionId: execution.id,
          userId: execution.userId,
          level: "info",
          event: "compiled",
          message: `compiled once for ${cases} test cases`,
          data: { cases, timeMs, language: r.language },
        }),
    });
  }

  /**
   * A request's `network` checked against the server's policy, narrowed by the
   * key's own allowlist (checked against the server's when the key was made).
   */
  resolveNetwork(
    input: CreateExecutionInput["network"],
    networkAllow?: string[] | null,
  ): EgressPolicy | null {
    return resolveKeyEgress(input, this.o.config.network, networkAllow);
  }

  /** The tiers this host runs: gvisor only when its probe passed (sandbox/tiers.ts). */
  tiers(): Isolation[] {
    return tiersOf(this.o.host);
  }

  /** This node runs what it is given itself, so a stdin stream can reach the program. */
  get interactive(): boolean {
    return !this.o.clustered;
  }

  /** Validates a request (already shape-checked) and queues it for `userId`. */
  submit(
    input: CreateExecutionInput,
    actor: {
      userId: string;
      keyId?: string | undefined;
      networkAllow?: string[] | null | undefined;
      isolation?: KeyIsolation | undefined;
    },
    source: ExecutionSource,
    live?: LiveInput,
  ): Execution {
    // A cluster node's runs go through the shared queue (src/cluster/cluster-service.ts):
    // one started here would have no record and skip the cluster-wide caps.
    if (this.o.clustered)
      throw new WardenError(
        "INTERNAL",
        "in cluster mode executions are submitted to the cluster queue",
      );
    const def = this.o.registry.lookup(input.language);
    if (!def)
      throw new WardenError(
        "UNSUPPORTED_LANGUAGE",
        `language: "${input.language}" is not supported (GET /v1/runtimes)`,
      );
    this.o.registry.resolve(def.language); // not installed here → UNSUPPORTED_LANGUAGE
    const network = this.resolveNetwork(input.network, actor.networkAllow);
    const environment = this.environments.resolve(input.environment, "environment");
    const checkerLanguage = (name: string): string | undefined => {
      const found = this.o.registry.lookup(name);
      if (found) this.o.registry.resolve(found.language); // not installed here → UNSUPPORTED_LANGUAGE
      return found?.language;
    };
    const request = toExecutionRequest(
      this.o.config,
      def,
      input,
      { network, environment, checkerLanguage },
      actor,
      source,
    );
    // Refused before it is queued: a gvisor run must never fall back to namespaces.
    checkTierAvailable(this.o.host, request.isolation);
    return this.scheduler.submit(live?.stdin ? { ...request, stdinStream: live.stdin } : request);
  }

  /**
   * Queues code for `userId` and returns the live execution at once: its `id`
   * (for killExecution), `done` (the result) and `output` events as it runs.
   */
  start(options: ExecuteOptions, userId = "library"): Execution {
    return this.submit(
      {
        language: options.language,
        code: options.code,
        timeout: options.timeout,
        retryOnFailure: options.retryOnFailure ?? true,
        stdin: options.stdin,
        args: options.args,
        limits: options.limits,
        network: options.network,
        environment: options.environment,
        tests: options.tests,
        compare: options.compare,
        stopOnFirstFailure: options.stopOnFirstFailure,
        isolation: options.isolation,
        wait: true,
      },
      { userId },
      "library",
    );
  }

  /** Runs code for `userId` and resolves with the result (the spec's library API). */
  async execute(options: ExecuteOptions, userId = "library"): Promise<ExecutionResult> {
    const release = await this.quotas?.admit({ userId }, "execution");
    try {
      return await this.start(options, userId).done;
    } finally {
      release?.();
    }
  }

  canStartExecution(userId: string): AdmissionDecision {
    return this.scheduler.canStart(userId);
  }

  killExecution(executionId: string, reason: string): boolean {
    return this.scheduler.kill(executionId, reason);
  }

  getSystemMetrics(): SystemMetrics {
    const c = this.o.config;
    return {
      activeExecutions: this.scheduler.activeCount,
      queuedExecutions: this.scheduler.queuedCount,
      totalUsers: this.scheduler.users().length,
      utilizationPercent:
        Math.round((this.scheduler.activeCount / c.maxConcurrentSandboxes) * 1000) / 10,
      maxConcurrentSandboxes: c.maxConcurrentSandboxes,
      maxSandboxesPerUser: c.maxSandboxesPerUser,
      memoryReservedMb: this.scheduler.memoryReservedMb,
      memoryBudgetMb: this.memoryBudgetMb,
      memoryBudgetMode: c.memoryBudgetMode,
      memoryUsedMb: Math.round(this.scheduler.memoryMeasuredMb),
      pool: this.o.host.pool.stats(),
    };
  }

  getUserMetrics(userId: string): UserMetrics {
    const active = this.scheduler.activeOf(userId);
    return {
      userId,
      activeExecutions: active,
      queuedExecutions: this.scheduler.queuedOf(userId),
      utilizationPercent: Math.round((active / this.o.config.maxSandboxesPerUser) * 1000) / 10,
      maxSandboxesPerUser: this.o.config.maxSandboxesPerUser,
    };
  }

  getLogs(executionId: string): Promise<AuditEvent[]> {
    return this.records.events(executionId);
  }

  /** Memory now and CPU so far of running executions' sandboxes, read from their cgroups. */
  async sandboxUsage(
    ids: readonly string[],
  ): Promise<Map<string, { memoryBytes: number; cpuTimeMs: number }>> {
    const byBox = new Map<string, string>();
    for (const id of ids) {
      const box = this.scheduler.get(id)?.boxId;
      if (box) byBox.set(box, id);
    }
    const usage = new Map<string, { memoryBytes: number; cpuTimeMs: number }>();
    if (byBox.size === 0) return usage;
    // A box's runs are `<box>-1`, `<box>-2` (compile, then program): the latest is running.
    const latest = new Map<string, { name: string; run: number }>();
    for (const name of await this.o.host.cgroups.list()) {
      const cut = name.lastIndexOf("-");
      const box = name.slice(0, cut);
      const run = Number(name.slice(cut + 1));
      if (byBox.has(box) && run > (latest.get(box)?.run ?? 0)) latest.set(box, { name, run });
    }
    await Promise.all(
      [...latest].map(async ([box, { name }]) => {
        const now = await this.o.host.cgroups
          .open(name)
          .usage()
          .catch(() => null); // it ended meanwhile
        if (now) usage.set(byBox.get(box)!, now);
      }),
    );
    return usage;
  }

  /** The live execution, if it is still queued or running. */
  live(executionId: string): Execution | undefined {
    return this.scheduler.get(executionId);
  }

  /** How many bytes of output are stored for an execution: what loading them costs. */
  storedOutputBytes(executionId: string): Promise<number> {
    return this.records.outputBytes(executionId);
  }

  /** A stored result (from `getRecord(id, false)`) with its output loaded. */
  withStoredOutput(executionId: string, result: ExecutionResult): Promise<ExecutionResult> {
    return this.records.withOutput(executionId, result);
  }

  /** An execution's record; `withOutput: false` leaves the stored output where it is. */
  getRecord(executionId: string, withOutput = true): Promise<ExecutionRecord | null> {
    return this.records.get(executionId, withOutput);
  }

  /** Graceful stop: no intake, running executions get `deadlineMs`, every final state recorded. */
  async close(deadlineMs: number): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    await this.scheduler.drain(deadlineMs);
  }
}
