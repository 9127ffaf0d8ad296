/**
 * Callback deliveries and their attempts, kept in the store so pending work
 * survives a restart and never piles up in memory. A delivery is claimed only
 * once its execution's record is final; a claim is a lease, so on PostgreSQL
 * several API nodes share the work and each delivery is sent by one of them.
 */
import type { ExecutionStatus } from "../contract/result.js";

export type DeliveryState = "pending" | "delivered" | "failed";

export interface Delivery {
  id: string;
  executionId: string;
  userId: string;
  keyId: string | null;
  url: string;
  format: string;
  batchId: string | null;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
  firstAttemptAt: number | null;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: number | null;
}

export interface DeliveryAttempt {
  attempt: number;
  at: number;
  /** The receiver's HTTP status; null when no answer came. */
  status: number | null;
  error: string | null;
  durationMs: number;
}

/** A delivery as registered: the rest (state, attempts, times) the store starts itself. */
export type NewDelivery = Pick<
  Delivery,
  "id" | "executionId" | "userId" | "keyId" | "url" | "format" | "batchId" | "createdAt"
>;

/** What an attempt changes: the delivery's next state, and the attempt's log line. */
export interface AttemptOutcome {
  state: DeliveryState;
  /** When to try again (state pending). */
  nextAttemptAt: number;
  attempt: DeliveryAttempt;
}

export interface DeliveryFilter {
  /** Only this user's (absent: everyone's, for admins). */
  userId?: string | undefined;
  executionId?: string | undefined;
  state?: DeliveryState | undefined;
  /** Older than this page's last (createdAt, id). */
  before?: { createdAt: number; id: string } | undefined;
  limit: number;
}

/** Attempts kept per delivery; errors kept per attempt (characters). */
export const MAX_ATTEMPT_ROWS = 50;
export const MAX_ERROR_CHARS = 300;

export interface WebhookStore {
  add(d: NewDelivery): Promise<void>;
  /**
   * Leases up to `limit` due deliveries whose execution is final, for
   * `leaseMs`, to `owner`; none another owner holds an unexpired lease on.
   */
  claim(owner: string, now: number, leaseMs: number, limit: number): Promise<Delivery[]>;
  /** Records an attempt, if `owner` still holds the lease; false when it lost it. */
  finishAttempt(id: string, owner: string, outcome: AttemptOutcome): Promise<boolean>;
  get(id: string): Promise<Delivery | null>;
  list(filter: DeliveryFilter): Promise<Delivery[]>;
  attempts(deliveryIds: readonly string[]): Promise<Map<string, DeliveryAttempt[]>>;
  /** Removes deliveries created more than `retentionMs` ago (and their attempts). */
  expire(retentionMs: number): Promise<number>;
}

export interface DeliveryRow {
  id: string;
  execution_id: string;
  user_id: string;
  key_id: string | null;
  url: string;
  format: string;
  batch_id: string | null;
  state: string;
  attempts: number;
  next_attempt_at: number;
  created_at: number;
  first_attempt_at: number | null;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
}

export interface AttemptRow {
  delivery_id: string;
  attempt: number;
  at: number;
  status: number | null;
  error: string | null;
  duration_ms: number;
}

export function toDelivery(r: DeliveryRow): Delivery {
  return {
    id: r.id,
    executionId: r.execution_id,
    userId: r.user_id,
    keyId: r.key_id,
    url: r.url,
    format: r.format,
    batchId: r.batch_id,
    state: r.state as DeliveryState,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    createdAt: r.created_at,
    firstAttemptAt: r.first_attempt_at,
    lastStatus: r.last_status,
    lastError: r.last_error,
    deliveredAt: r.delivered_at,
  };
}

export function groupAttempts(rows: readonly AttemptRow[]): Map<string, DeliveryAttempt[]> {
  const out = new Map<string, DeliveryAttempt[]>();
  for (const r of rows) {
    const list = out.get(r.delivery_id) ?? [];
    list.push({
      attempt: r.attempt,
      at: r.at,
      status: r.status,
      error: r.error,
      durationMs: r.duration_ms,
    });
    out.set(r.delivery_id, list);
  }
  return out;
}

/** An error as kept: one line, at most MAX_ERROR_CHARS. */
export function truncateError(error: string | null): string | null {
  if (error === null) return null;
  const line = error.replace(/[\r\n\t]+/g, " ");
  return line.length > MAX_ERROR_CHARS ? `${line.slice(0, MAX_ERROR_CHARS - 1)}…` : line;
}

/** Statuses not final yet: the claim's join delivers no execution still in one. */
export const UNFINISHED_STATUSES = [
  "queued",
  "running",
] as const satisfies readonly ExecutionStatus[];
