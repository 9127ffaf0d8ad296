/**
 * The execution service of an API node in a cluster: the surface the routes
 * use (submit, live, kill, records, metrics), backed by the PostgreSQL queue
 * and Redis instead of a local scheduler and sandbox host. Requests are
 * validated as on a single node; the language must be one an active worker
 * advertises. Static analysis needs a sandbox, so on an `api` node it is
 * left to the worker, which runs it before the program (a refused run ends
 * `rejected` with the policy's code); an `all` node analyses before submit.
 */
import type pg from "pg";
import { z } from "zod";
import type { Logger } from "../audit/logger.js";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import type { ExecutionResult } from "../contract/result.js";
import type { SystemMetrics, UserMetrics } from "../contract/metrics.js";
import type { PolicyMode } from "../contract/policy.js";
import { DEFAULT_ENVIRONMENT } from "../contract/environment.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import type { Store } from "../store/store.js";
import type { Metrics } from "../executions/metrics.js";
import type { AuditEvent, ExecutionRecord, NewEvent } from "../store/records.js";
import type { Execution, ExecutionRequest, ExecutionSource } from "../executions/execution.js";
import { toExecutionRequest, type CreateExecutionInput } from "../executions/request.js";
import type { KeyIsolation } from "../executions/isolation.js";
import { judgeMemoryMb } from "../judging/types.js";
import type { AdmissionDecision } from "../executions/scheduler.js";
import type { QuotaGate } from "../executions/frontend.js";
import { resolveKeyEgress, type EgressPolicy } from "../network/policy.js";
import { checkEnvironmentName } from "../environments/store.js";
import { executionId } from "../util/ids.js";
import { channels } from "./events.js";
import { toJob } from "./job.js";
import type { ClusterQueue } from "./queue.js";
import type { ClusterRedis } from "./redis.js";
import { DB_NOW_MS } from "./reaper.js";
import { FollowBudget, followExecution, isFinal, type Followed } from "./remote-execution.js";

export interface ClusterServiceOptions {
  config: Config;
  /** Quotas per user and key, checked before a run is queued (src/usage/quotas.ts). */
  quotas?: QuotaGate | undefined;
  /** Runtime definitions (names, aliases, file names); nothing is resolved on this host. */
  registry: RuntimeRegistry;
  pool: pg.Pool;
  redis: ClusterRedis;
  queue: ClusterQueue;
  store: Store;
  logger: Logger;
  /** Leave static analysis to the worker (an `api` node has no sandbox to analyse in). */
  analyseOnWorker: boolean;
  /** Prometheus metrics of the node (refusals are counted in them by the HTTP layer). */
  metrics: Metrics;
  /** @default 2000 */
  pollMs?: number;
  /** Live output held across all followed executions (FollowBudget). @default 256 MiB */
  maxFollowedOutputBytes?: number;
}

/**
 * A JSON column of a worker row, or undefined when it is not JSON: one bad
 * row must not fail every submit or runtimes listing; it offers nothing.
 */
function rowJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A worker row's runtimes (written by workers; read strictly, bounded). */
const WorkerRuntimesSchema = z
  .array(z.object({ language: z.string().max(64), version: z.string().max(64).nullable() }))
  .max(256);

/** What the active workers can run, cached for a second (read on every submit). */
interface Capabilities {
  languages: Set<string>;
  environments: Set<string>;
  maxMemoryMb: number;
  at: number;
}

export class ClusterService {
  private readonly followed = new Map<string, Followed>();
  private capabilities: Capabilities | null = null;
  private readonly budget: FollowBudget;
  private lastReadFailureLog = 0;
  private readFailures = 0;

  constructor(private readonly o: ClusterServiceOptions) {
    this.budget = new FollowBudget(o.maxFollowedOutputBytes ?? 256 * 1024 * 1024);
  }

  get metrics(): Metrics {
    return this.o.metrics;
  }

  get quotas(): QuotaGate | undefined {
    return this.o.quotas;
  }

  get records(): Store["records"] {
    return this.o.store.records;
  }

  get artifacts(): Store["artifacts"] {
    return this.o.store.artifacts;
  }

  audit(e: NewEvent): void {
    void this.o.store.records
      .event(e)
      .catch((error: unknown) => this.o.logger.error({ err: error }, "audit write failed"));
  }

  private async workersCan(): Promise<Capabilities> {
    const now = Date.now();
    if (this.capabilities && now - this.capabilities.at < 1000) return this.capabilities;
    const { rows } = await this.o.pool.query<{
      languages: string;
      environments: string;
      memory_budget_mb: number;
    }>(
      `SELECT languages, environments, memory_budget_mb FROM workers
       WHERE state = 'active' AND heartbeat_at > ${DB_NOW_MS} - $1`,
      [this.o.config.cluster.workerTimeoutMs],
    );
    const parse = (text: string): string[] => {
      const v = rowJson(text);
      return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
    };
    this.capabilities = {
      languages: new Set(rows.flatMap((r) => parse(r.languages))),
      environments: new Set(rows.flatMap((r) => parse(r.environments))),
      maxMemoryMb: Math.max(0, ...rows.map((r) => r.memory_budget_mb)),
      at: now,
    };
    return this.capabilities;
  }

  /**
   * What the active workers can run, with the versions they detected: an API
   * node answers GET /v1/runtimes (and Piston's) from this, not from its own host.
   */
  async runtimes(): Promise<
    { language: string; aliases: string[]; extensions: string[]; version: string | null }[]
  > {
    const { rows } = await this.o.pool.query<{ runtimes: string }>(
      `SELECT runtimes FROM workers WHERE state = 'active' AND heartbeat_at > ${DB_NOW_MS} - $1`,
      [this.o.config.cluster.workerTimeoutMs],
    );
    const versions = new Map<string, string | null>();
    for (const row of rows)
      for (const r of WorkerRuntimesSchema.safeParse(rowJson(row.runtimes)).data ?? [])
        if (!versions.has(r.language) || versions.get(r.language) === null)
          versions.set(r.language, r.version);
    return this.o.registry
      .definitions()
      .filter((d) => versions.has(d.language))
      .map((d) => ({
        language: d.language,
        aliases: d.aliases,
        extensions: d.extensions,
        version: versions.get(d.language) ?? null,
      }));
  }

  resolveNetwork(
    input: CreateExecutionInput["network"],
    networkAllow?: string[] | null,
  ): EgressPolicy | null {
    return resolveKeyEgress(input, this.o.config.network, networkAllow);
  }

  /** Validates a request as a single node does, and queues it for the cluster. */
  async submit(
    input: CreateExecutionInput,
    actor: {
      userId: string;
      keyId?: string | undefined;
      networkAllow?: string[] | null | undefined;
      /** The key's policy mode (null: the server's); used when the worker analyses. */
      policy?: PolicyMode | null | undefined;
      isolation?: KeyIsolation | undefined;
    },
    source: ExecutionSource,
  ): Promise<Execution> {
    const { config, registry } = this.o;
    const def = registry.lookup(input.language);
    const can = await this.workersCan();
    if (!def || !can.languages.has(def.language))
      throw new WardenError(
        "UNSUPPORTED_LANGUAGE",
        def
          ? `language: "${def.language}" is not installed on any active worker`
          : `language: "${input.language}" is not supported (GET /v1/runtimes)`,
      );
    const network = this.resolveNetwork(input.network, actor.networkAllow);
    let environment: ExecutionRequest["environment"] = null;
    if (input.environment !== undefined && input.environment !== DEFAULT_ENVIRONMENT) {
      const name = checkEnvironmentName(input.environment, "environment");
      if (!can.environments.has(name))
        throw new WardenError(
          "NOT_FOUND",
          `environment: no environment named "${name}" on any active worker (GET /v1/environments)`,
        );
      // By name only: the worker mounts its own copy (job.ts).
      environment = { name, key: name, binds: [], env: {} };
    }
    const checkerLanguage = (name: string): string | undefined => {
      const found = registry.lookup(name)?.language;
      return found && can.languages.has(found) ? found : undefined;
    };
    const request = toExecutionRequest(
      config,
      def,
      input,
      { network, environment, checkerLanguage },
      actor,
      source,
    );
    const compileMb = def.compile
      ? (request.compileLimits?.memoryMb ?? def.compileLimits.memoryMb ?? 0)
      : 0;
    const reservationMb = Math.max(
      request.limits.memoryMb,
      compileMb,
      judgeMemoryMb(request.judge, (language) => {
        const d = registry.lookup(language);
        return d?.compile ? (d.compileLimits.memoryMb ?? 0) : 0;
      }),
    );
    if (reservationMb > can.maxMemoryMb)
      throw new WardenError(
        "QUOTA_EXCEEDED",
        `limits.memoryMb: ${reservationMb} MiB exceeds what any active worker can hold (${can.maxMemoryMb} MiB)`,
      );
    const id = executionId();
    // Following starts before the insert: a fast worker's first message is not missed.
    const followed = this.follow(id, request);
    try {
      await this.o.queue.submit({
        id,
        userId: actor.userId,
        keyId: actor.keyId ?? null,
        source,
        language: def.language,
        files: request.files,
        limits: request.limits,
        job: toJob(request, this.o.analyseOnWorker ? (actor.policy ?? null) : undefined),
        reservationMb,
        createdAt: followed.execution.createdAt,
      });
    } catch (error) {
      followed.stop();
      this.followed.delete(id);
      if (error instanceof WardenError && error.code === "SANDBOX_BUSY")
        this.audit({
          userId: actor.userId,
          level: "warn",
          event: "rejected",
          message: error.message,
          data: { reason: error.details?.["reason"] },
        });
      throw error;
    }
    void this.o.redis.publish(channels.wake(), { t: "wake" });
    return followed.execution;
  }

  /**
   * Every followed execution polls its record: with PostgreSQL away, each
   * would log a line every poll (a thousand followed runs, 500 lines a
   * second, for as long as the outage lasts). One line per 10 s says it.
   */
  private readFailed(error: unknown, executionId: string): void {
    const now = Date.now();
    this.readFailures++;
    if (now - this.lastReadFailureLog < 10_000) return;
    this.lastReadFailureLog = now;
    this.o.logger.warn(
      { err: error, executionId, failures: this.readFailures },
      "cannot read execution records; followed executions wait",
    );
    this.readFailures = 0;
  }

  private follow(id: string, request: ExecutionRequest): Followed {
    const followed = followExecution({
      id,
      request,
      redis: this.o.redis,
      pollMs: this.o.pollMs,
      budget: this.budget,
      load: async (executionId) => {
        const record = await this.o.store.records.get(executionId, true);
        if (!record) return null;
        return isFinal(record.status) && record.result ? record.result : "pending";
      },
      onError: (error) => this.readFailed(error, id),
    });
    this.followed.set(id, followed);
    void followed.execution.done.then(() => this.followed.delete(id));
    return followed;
  }

  /** Queues code and resolves with its result (the library API). */
  async execute(
    input: Omit<CreateExecutionInput, "wait">,
    userId = "library",
  ): Promise<ExecutionResult> {
    const release = await this.o.quotas?.admit({ userId }, "execution");
    try {
      const e = await this.submit({ ...input, wait: true }, { userId }, "library");
      return await e.done;
    } finally {
      release?.();
    }
  }

  /** The live execution, if this node is following it (it submitted it, or `follow` was asked). */
  live(id: string): Execution | undefined {
    return this.followed.get(id)?.execution;
  }

  /** Follows an execution queued or running anywhere (SSE on any API node); undefined when final or unknown. */
  async followAny(id: string): Promise<Execution | undefined> {
    const known = this.live(id);
    if (known) return known;
    const record = await this.o.store.records.get(id, false);
    if (!record || isFinal(record.status)) return undefined;
    const request = {
      language: record.language,
      files: [],
      limits: record.limits,
      network: null,
      retryOnFailure: false,
      userId: record.userId,
      keyId: record.keyId ?? undefined,
      source: record.source as ExecutionSource,
    } satisfies ExecutionRequest;
    const followed = this.follow(id, request);
    followed.execution.setStatus(record.status);
    void followed.check();
    return followed.execution;
  }

  /** Kills a queued (at once) or running (by its worker) execution; false when not live. */
  async killExecution(id: string, reason: string): Promise<boolean> {
    const killed = await this.o.queue.kill(id, reason);
    if (!killed) return false;
    if (killed.was === "running" && killed.workerId)
      await this.o.redis.publish(channels.kill(killed.workerId), { t: "kill", id, reason });
    else await this.o.redis.publish(channels.exec(id), { t: "end", status: "killed" });
    await this.followed.get(id)?.check();
    return true;
  }

  /** Whether a new execution of this user would be queued now (counted cluster-wide). */
  async canStartExecution(userId: string): Promise<AdmissionDecision> {
    const c = this.o.config;
    const { rows } = await this.o.pool.query<{ total: string; mine: string }>(
      `SELECT count(*) AS total, count(*) FILTER (WHERE user_id = $1) AS mine
       FROM executions WHERE status = 'queued'`,
      [userId],
    );
    if (Number(rows[0]?.total ?? 0) >= c.maxQueueSize)
      return { allowed: false, reason: "queue_full" };
    if (Number(rows[0]?.mine ?? 0) >= c.maxQueuedPerUser)
      return { allowed: false, reason: "user_queue_full" };
    return { allowed: true, reason: null };
  }

  async getSystemMetrics(): Promise<SystemMetrics> {
    const c = this.o.config;
    const { rows } = await this.o.pool.query<Record<string, string | null>>(
      `SELECT
         (SELECT count(*) FROM executions WHERE status = 'running') AS running,
         (SELECT count(*) FROM executions WHERE status = 'queued') AS queued,
         (SELECT count(DISTINCT user_id) FROM executions WHERE status IN ('queued', 'running')) AS users,
         (SELECT sum(max_concurrent) FROM workers WHERE state = 'active') AS max,
         (SELECT sum(memory_reserved_mb) FROM workers WHERE state <> 'gone') AS reserved,
         (SELECT sum(memory_budget_mb) FROM workers WHERE state = 'active') AS budget`,
    );
    const r = rows[0] ?? {};
    const n = (k: string): number => Number(r[k] ?? 0);
    const max =
      c.cluster.maxConcurrentTotal > 0
        ? Math.min(n("max"), c.cluster.maxConcurrentTotal)
        : n("max");
    return {
      activeExecutions: n("running"),
      queuedExecutions: n("queued"),
      totalUsers: n("users"),
      utilizationPercent: max > 0 ? Math.round((n("running") / max) * 1000) / 10 : 0,
      maxConcurrentSandboxes: max,
      maxSandboxesPerUser: c.maxSandboxesPerUser,
      memoryReservedMb: n("reserved"),
      memoryBudgetMb: n("budget"),
      memoryBudgetMode: c.memoryBudgetMode,
      memoryUsedMb: 0,
      pool: [],
    };
  }

  async getUserMetrics(userId: string): Promise<UserMetrics> {
    const { rows } = await this.o.pool.query<{ running: string; queued: string }>(
      `SELECT count(*) FILTER (WHERE status = 'running') AS running,
              count(*) FILTER (WHERE status = 'queued') AS queued
       FROM executions WHERE user_id = $1 AND status IN ('queued', 'running')`,
      [userId],
    );
    const active = Number(rows[0]?.running ?? 0);
    const max = this.o.config.maxSandboxesPerUser;
    return {
      userId,
      activeExecutions: active,
      queuedExecutions: Number(rows[0]?.queued ?? 0),
      utilizationPercent: Math.round((active / max) * 1000) / 10,
      maxSandboxesPerUser: max,
    };
  }

  getLogs(id: string): Promise<AuditEvent[]> {
    return this.o.store.records.events(id);
  }

  getRecord(id: string, withOutput = true): Promise<ExecutionRecord | null> {
    return this.o.store.records.get(id, withOutput);
  }

  storedOutputBytes(id: string): Promise<number> {
    return this.o.store.records.outputBytes(id);
  }

  withStoredOutput(id: string, result: ExecutionResult): Promise<ExecutionResult> {
    return this.o.store.records.withOutput(id, result);
  }

  /**
   * Stops following. Executions go on on their workers; a client still
   * waiting here gets `deadlineMs` for its end, then an answer saying to
   * fetch the record by id.
   */
  async close(deadlineMs: number): Promise<void> {
    const waiting = [...this.followed.values()];
    const timer = setTimeout(() => {
      for (const f of waiting) {
        f.stop();
        f.execution.finishWithout("error", {
          code: "SANDBOX_BUSY",
          message: `this API node stopped; the execution goes on: GET /v1/executions/${f.execution.id}`,
          retryable: true,
        });
      }
    }, deadlineMs);
    await Promise.all(waiting.map((f) => f.execution.done));
    clearTimeout(timer);
  }
}
