/**
 * What Warden keeps, behind one interface with two implementations: SQLite in
 * the data dir (the single node's embedded default) and PostgreSQL (a cluster's
 * shared state). Every method is async; the SQLite store does its work at call
 * time, so a single node sees each write done before the call returns.
 */
import type { ExecutionResult } from "../contract/result.js";
import type { SandboxLimits } from "../contract/limits.js";
import type { PolicyMode } from "../contract/policy.js";
import type { Isolation } from "../contract/isolation.js";
import type { ApiKey, Scope } from "./keys.js";
import type { AuditEvent, ExecutionRecord, ListedRecord, ListFilter, NewEvent } from "./records.js";
import type { StoredArtifact } from "./artifacts.js";
import type { QuotaRule, NewQuota, QuotaFilter } from "./quotas.js";
import type { UsageDelta, UsagePeriodRow, UsageQuery, UsageTotals } from "./usage.js";
import type { WebhookStore } from "./webhooks.js";
import type { CountBucket, CountFilter, EventFilter, StoredAuditEvent } from "./audit-search.js";
import type { Judge0Store } from "./judge0.js";

export interface NewRecord {
  id: string;
  userId: string;
  keyId: string | null;
  source: string;
  language: string;
  files: readonly { path: string; content: string | Buffer }[];
  limits: SandboxLimits;
  createdAt: number;
  /** Set when it started in the same step: the record is written `running`. */
  startedAt?: number | null | undefined;
}

/** One audit event, or several written in order. */
export type Events = NewEvent | readonly NewEvent[];

/**
 * Writes about one execution (`queued`, `started`, `finished`) are applied in
 * the order they were called, even when the caller does not wait for each.
 */
export interface RecordStore {
  /** One audit event; events are stored in the order this is called. */
  event(e: NewEvent): Promise<void>;
  /** A new record (`queued`, or `running` when `startedAt` is set), with its audit events in the same transaction. */
  queued(r: NewRecord, events?: Events): Promise<void>;
  started(id: string, at: number, events?: Events): Promise<void>;
  /** The final state, its output and its audit events in one transaction. */
  finished(id: string, result: ExecutionResult, at: number, events?: Events): Promise<void>;
  get(id: string, withOutput?: boolean): Promise<ExecutionRecord | null>;
  /** A stored result (from `get(id, false)`) with its output loaded. */
  withOutput(id: string, result: ExecutionResult): Promise<ExecutionResult>;
  outputBytes(id: string): Promise<number>;
  list(filter: ListFilter): Promise<ListedRecord[]>;
  events(executionId: string, limit?: number): Promise<AuditEvent[]>;
  /** Single node: records a stopped Warden left queued or running end as `error`. */
  failOrphans(): Promise<string[]>;
  expire(retentionMs: number): Promise<{ executions: number; events: number }>;
  /** Audit events matching a filter, newest first (the admin audit search). */
  searchEvents(filter: EventFilter): Promise<StoredAuditEvent[]>;
  /** How many events of each name fall in each bucket of a time range. */
  countEvents(filter: CountFilter): Promise<CountBucket[]>;
}

export interface NewKeyOptions {
  name: string;
  scopes: Scope[];
  userId: string;
  token?: string;
  id?: string;
  networkAllow?: string[] | null;
  policy?: PolicyMode | null;
  isolationDefault?: Isolation | null | undefined;
  isolationForced?: boolean | undefined;
}

export interface KeyStore {
  /** Makes a key; returns it with its token, which is never stored or shown again. */
  create(options: NewKeyOptions): Promise<{ key: ApiKey; token: string }>;
  authenticate(token: string): Promise<ApiKey | null>;
  get(id: string): Promise<ApiKey | null>;
  list(): Promise<ApiKey[]>;
  revoke(id: string): Promise<boolean>;
  hasAdmin(): Promise<boolean>;
  ensureEnvAdmin(token: string): Promise<void>;
  /** Changes a live key's fields (null: revoked or unknown). Cached copies are dropped. */
  update(id: string, patch: KeyPatch): Promise<ApiKey | null>;
  /** A new token for a live key; the old one is refused from now on (null: revoked or unknown). */
  rotate(id: string): Promise<{ key: ApiKey; token: string } | null>;
  /** The key's callback signing secret (hex), made on first use; null for an unknown key. */
  webhookSecret(id: string): Promise<string | null>;
  /** A new signing secret for the key (the old one stops signing at once); null for an unknown key. */
  rotateWebhookSecret(id: string): Promise<string | null>;
}

/** What `update` may change of a key (absent: unchanged). */
export interface KeyPatch {
  name?: string | undefined;
  scopes?: Scope[] | undefined;
  networkAllow?: string[] | null | undefined;
  policy?: PolicyMode | null | undefined;
  isolationDefault?: Isolation | null | undefined;
  isolationForced?: boolean | undefined;
}

export interface NewArtifact {
  ownerId: string;
  userId: string;
  name: string;
  mimeType: string;
  content: Buffer;
}

export interface ArtifactStore {
  save(a: NewArtifact): Promise<StoredArtifact>;
  /** An artifact with its bytes, for its owner (or an admin); NOT_FOUND otherwise. */
  open(
    ownerId: string,
    name: string,
    userId: string,
    admin: boolean,
  ): Promise<StoredArtifact & { content: Buffer }>;
  list(ownerId: string): Promise<StoredArtifact[]>;
  /** Bytes of the artifacts named `name` that `userId` has stored (a per-user disk bound). */
  bytesOf(userId: string, name: string): Promise<number>;
  /** Removes artifacts older than `maxAgeMs`; returns how many. */
  expire(maxAgeMs: number): Promise<number>;
}

export interface SessionRow {
  id: string;
  userId: string;
  keyId: string | null;
  /** The worker that holds it (a single node: its own id). */
  workerId: string;
  language: string | null;
  createdAt: number;
  endedAt: number | null;
  endReason: string | null;
}

/** Where each live session is: what routes a session's calls in a cluster. */
export interface SessionRegistry {
  register(row: Omit<SessionRow, "endedAt" | "endReason">): Promise<void>;
  ended(id: string, reason: string, at?: number): Promise<void>;
  get(id: string): Promise<SessionRow | null>;
  /** Live sessions of a user, across every worker. */
  liveCountOf(userId: string): Promise<number>;
  /** Ends every live session of a worker (it died or drained); returns their rows. */
  endAllOf(workerId: string, reason: string): Promise<SessionRow[]>;
  /** Removes sessions that ended more than `retentionMs` ago; returns how many. */
  expire(retentionMs: number): Promise<number>;
}

/**
 * Hourly usage rows (src/store/usage.ts). An execution's row is added by
 * `records.finished` itself; `add` is for sessions.
 */
export interface UsageStore {
  add(delta: UsageDelta): Promise<void>;
  /** Periods (and groups) in order; at most `limit` rows. */
  query(q: UsageQuery): Promise<UsagePeriodRow[]>;
  /** One user's or one key's totals in [fromMs, toMs). */
  totals(
    subject: { userId: string } | { keyId: string },
    fromMs: number,
    toMs: number,
  ): Promise<UsageTotals>;
  /** Removes rows older than `retentionMs`; returns how many. */
  expire(retentionMs: number): Promise<number>;
}

/** Quota rules per user or key (src/store/quotas.ts). */
export interface QuotaStore {
  /** Sets a rule (one per subject, metric and period: a second put replaces the limit). */
  put(q: NewQuota): Promise<QuotaRule>;
  list(filter?: QuotaFilter): Promise<QuotaRule[]>;
  /** The rules that apply to a request of this user through this key. */
  forActor(userId: string, keyId: string | null): Promise<QuotaRule[]>;
  remove(id: string): Promise<boolean>;
}

/** A dashboard login: the cookie's hash, the admin key it acts as, and when it ends. */
export interface DashboardSessionRow {
  idHash: string;
  keyId: string;
  createdAt: number;
  expiresAt: number;
}

/** Dashboard logins, shared by every API node (src/http/dashboard-session.ts). */
export interface DashboardSessionStore {
  create(row: DashboardSessionRow): Promise<void>;
  get(idHash: string): Promise<DashboardSessionRow | null>;
  /** Logout: the session is gone on every node at once. */
  delete(idHash: string): Promise<boolean>;
  /** Removes sessions that ended before `now`; returns how many. */
  expire(now: number): Promise<number>;
}

export interface Store {
  readonly kind: "sqlite" | "postgres";
  readonly records: RecordStore;
  readonly keys: KeyStore;
  readonly artifacts: ArtifactStore;
  readonly sessions: SessionRegistry;
  readonly usage: UsageStore;
  readonly quotas: QuotaStore;
  /** Callback deliveries and their attempts (docs/webhooks.md). */
  readonly webhooks: WebhookStore;
  readonly dashboardSessions: DashboardSessionStore;
  /** Judge0 submissions beside their execution records (src/store/judge0.ts). */
  readonly judge0: Judge0Store;
  /** Answers a trivial write (for /readyz). */
  isWritable(): Promise<boolean>;
  close(): Promise<void>;
}
