/**
 * Callbacks: when an execution ends, its result is delivered to the URL its
 * submitter gave, signed with the key's webhook secret, retried with backoff
 * for a bounded time, every attempt logged for its owner. What the routes
 * (REST, batches, the Judge0 adapter) need of that service.
 */
import type { ExecutionRecord } from "../store/records.js";

/** How a delivery's body is written: Warden's result, or Judge0's submission. */
export type CallbackFormat = "warden" | "judge0";

export interface CallbackRegistration {
  executionId: string;
  userId: string;
  keyId: string | null;
  /** Already checked with `checkUrl`. */
  url: string;
  format: CallbackFormat;
  /** The batch the execution belongs to, if any. */
  batchId?: string | undefined;
}

/** What one delivery sends; rendered when it is sent, from the final record (with output). */
export interface CallbackBody {
  method: "POST" | "PUT";
  contentType: string;
  body: string;
}

export type CallbackRenderer = (record: ExecutionRecord) => CallbackBody;

export interface Webhooks {
  /**
   * Refuses a callback URL that could reach Warden's host or network: a bad
   * scheme, credentials in it, a loopback, private, link-local or metadata
   * address, by name or after resolving it (unless the server config allows
   * the host). Throws INVALID_REQUEST naming `field`.
   */
  checkUrl(url: string, field: string): Promise<string>;
  /** Records a pending delivery; it is sent once the execution's record is final. */
  register(registration: CallbackRegistration): Promise<void>;
  /** This node saw an execution end: deliver its callbacks soon (a poll is the safety net). */
  nudge(executionId: string): void;
  close(): Promise<void>;
}
