/**
 * What Warden keeps, behind one interface with two implementations: SQLite in
 * the data dir (the single node's embedded default) and PostgreSQL (a cluster's
 * shared state). Every method is async; the SQLite store does its work at call
 * time, so a single node sees each write done before the call returns.
 */
import type { ExecutionResult } from "../contract/result.js";
import type { SandboxLimits } from "../contract/limits.js";
import type { PolicyMode } from "../contract/policy.js";
import type { ApiKey, Scope } from "./keys.js";
import type { AuditEvent, ExecutionRecord, ListedRecord, ListFilter, NewEvent } from "./records.js";
import type { StoredArtifact } from "./artifacts.js";
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
}

export interface NewKeyOptions {
  name: string;
  scopes: Scope[];
  userId: string;
  token?: string;
  id?: string;
  networkAllow?: string[] | null;
  policy?: PolicyMode | null;
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

export interface Store {
  readonly kind: "sqlite" | "postgres";
  readonly records: RecordStore;
  readonly keys: KeyStore;
  readonly artifacts: ArtifactStore;
  readonly sessions: SessionRegistry;
  /** Judge0 submissions beside their execution records (src/store/judge0.ts). */
  readonly judge0: Judge0Store;
  /** Answers a trivial write (for /readyz). */
  isWritable(): Promise<boolean>;
  close(): Promise<void>;
}
