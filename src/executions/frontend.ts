/**
 * What the interfaces (REST, Piston, MCP, sessions' policy checks) need of an
 * execution service. Two implement it: the single node's ExecutionService
 * (a local scheduler and sandbox host) and a cluster API node's
 * ClusterService (the PostgreSQL queue, workers elsewhere). Calls that may
 * cross the network return promises on the second; callers await both.
 */
import type { Isolation } from "../contract/isolation.js";
import type { Readable } from "node:stream";
import type { ExecutionResult } from "../contract/result.js";
import type { SystemMetrics, UserMetrics } from "../contract/metrics.js";
import type { PolicyMode } from "../contract/policy.js";
import type { EgressPolicy } from "../network/policy.js";
import type { AuditEvent, ExecutionRecord, NewEvent } from "../store/records.js";
import type { ArtifactStore, RecordStore } from "../store/store.js";
import type { Execution, ExecutionSource } from "./execution.js";
import type { Metrics } from "./metrics.js";
import type { CreateExecutionInput } from "./request.js";
import type { AdmissionDecision } from "./scheduler.js";
import type { KeyIsolation } from "./isolation.js";

export interface SubmitActor {
  userId: string;
  keyId?: string | undefined;
  networkAllow?: string[] | null | undefined;
  /** The key's policy mode (null: the server's), for a worker that analyses before it runs. */
  policy?: PolicyMode | null | undefined;
  /** The key's isolation tier settings (executions/isolation.ts). */
  isolation?: KeyIsolation | undefined;
}

/**
 * Quota checks at submission (src/usage/quotas.ts): throws QUOTA_EXCEEDED,
 * or admits and returns the release to call once the execution has finished.
 */
export interface QuotaGate {
  admit(
    actor: { userId: string; keyId?: string | null | undefined },
    kind: "execution" | "session",
  ): Promise<() => void>;
  /**
   * Why a running execution must stop now: a CPU-seconds or egress quota that
   * what it has used so far (`spent`) would pass; null while it may go on.
   */
  exhausted?(
    actor: { userId: string; keyId?: string | null | undefined },
    spent: { cpuMs: number; egressBytes: number },
  ): Promise<string | null>;
}

/** What only an in-process caller can hand a run (never queued across nodes). */
export interface LiveInput {
  /** Piped to the program for its whole life instead of the request's `stdin`. */
  stdin?: Readable | undefined;
}

export interface ExecutionFrontend {
  /** Quotas per user and key, when enforced. */
  readonly quotas?: QuotaGate | undefined;
  readonly records: RecordStore;
  readonly artifacts: ArtifactStore;
  readonly metrics: Metrics;
  audit(event: NewEvent): void;
  resolveNetwork(
    input: CreateExecutionInput["network"],
    networkAllow?: string[] | null,
  ): EgressPolicy | null;
  submit(
    input: CreateExecutionInput,
    actor: SubmitActor,
    source: ExecutionSource,
    live?: LiveInput,
  ): Execution | Promise<Execution>;
  /**
   * True where submit runs on this node's own sandboxes, so `live` input
   * reaches the program (a single node). A cluster node queues through
   * PostgreSQL, which carries no stream: absent there.
   */
  readonly interactive?: boolean;
  /** A cluster API node: what its workers can run (it has no runtimes of its own). */
  runtimes?(): Promise<
    { language: string; aliases: string[]; extensions: string[]; version: string | null }[]
  >;
  /** The isolation tiers this node's sandboxes run in (a single node: its host's). */
  tiers?(): Isolation[];
  /** The live execution this node follows (queued or running), if any. */
  live(id: string): Execution | undefined;
  /** A cluster API node follows an execution queued or running anywhere (SSE on any node). */
  followAny?(id: string): Promise<Execution | undefined>;
  killExecution(id: string, reason: string): boolean | Promise<boolean>;
  canStartExecution(userId: string): AdmissionDecision | Promise<AdmissionDecision>;
  getSystemMetrics(): SystemMetrics | Promise<SystemMetrics>;
  getUserMetrics(userId: string): UserMetrics | Promise<UserMetrics>;
  getLogs(id: string): Promise<AuditEvent[]>;
  getRecord(id: string, withOutput?: boolean): Promise<ExecutionRecord | null>;
  storedOutputBytes(id: string): Promise<number>;
  withStoredOutput(id: string, result: ExecutionResult): Promise<ExecutionResult>;
  /** Single node: running executions' memory and CPU now, from their cgroups (by id). */
  sandboxUsage?(
    ids: readonly string[],
  ): Promise<Map<string, { memoryBytes: number; cpuTimeMs: number }>>;
}
