/**
 * The deliverer: every node that serves the public API runs one. Pending
 * deliveries live in the store (never in an unbounded list here); each poll
 * leases at most as many as there are free slots (`webhooks.concurrency`),
 * sends them, records the attempt and schedules the next with exponential
 * backoff and jitter, until one succeeds, `maxAttempts` are spent or the next
 * would fall past `retryForSeconds` after the first. `nudge` makes a poll
 * happen at once when this node saw an execution end.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { Audit } from "../audit/trail.js";
import type { Logger } from "../audit/logger.js";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import type { Store } from "../store/store.js";
import type { AttemptOutcome, Delivery } from "../store/webhooks.js";
import { ulid } from "../util/ids.js";
import { packageVersion } from "../util/version.js";
import { EXECUTION_FINISHED_EVENT } from "./render.js";
import { sendAttempt, type AttemptResult } from "./send.js";
import { signatureHeader } from "./sign.js";
import type { CallbackFormat, CallbackRegistration, CallbackRenderer, Webhooks } from "./types.js";
import {
  checkCallbackUrl,
  checkHost,
  systemLookup,
  type Lookup,
  type UrlRules,
} from "./url-check.js";

export interface WebhookServiceOptions {
  config: Config;
  store: Store;
  logger: Logger;
  audit: Audit;
  renderers: Record<CallbackFormat, CallbackRenderer>;
  /** Tests: a stand-in resolver. @default the system's */
  lookup?: Lookup | undefined;
}

/** A lease outlives an attempt's deadline by this much (rendering, DNS, the store's writes). */
const LEASE_SLACK_MS = 30_000;
/** How often delivery rows older than the records' retention are removed. */
const EXPIRE_EVERY_MS = 3_600_000;

export class WebhookService implements Webhooks {
  private readonly c: Config["webhooks"];
  private readonly rules: UrlRules;
  /** This node's name on the leases it takes. */
  private readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  private readonly log: Logger;
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private again = false;
  private closed = false;
  private lastExpire = 0;

  constructor(private readonly o: WebhookServiceOptions) {
    this.c = o.config.webhooks;
    this.rules = {
      allowHosts: this.c.allowHosts,
      lookup: o.lookup ?? systemLookup,
      timeoutMs: this.c.timeoutMs,
    };
    this.log = o.logger.child({ component: "webhooks" });
  }

  /** Starts polling the store for due deliveries. */
  start(): this {
    this.schedule(0);
    return this;
  }

  async checkUrl(url: string, field: string): Promise<string> {
    try {
      return (await checkCallbackUrl(url, field, this.rules)).href;
    } catch (error) {
      if (error instanceof WardenError)
        this.o.audit({ level: "warn", event: "webhook_refused", message: error.message });
      throw error;
    }
  }

  async register(r: CallbackRegistration): Promise<void> {
    // The key's secret signs every delivery: without a key there is nothing to sign with.
    if (r.keyId === null)
      throw new WardenError("INVALID_REQUEST", "callbackUrl: needs a request made with an API key");
    await this.o.store.webhooks.add({
      id: `dlv_${ulid()}`,
      executionId: r.executionId,
      userId: r.userId,
      keyId: r.keyId,
      url: r.url,
      format: r.format,
      batchId: r.batchId ?? null,
      createdAt: Date.now(),
    });
  }

  nudge(_executionId: string): void {
    if (this.polling) this.again = true;
    else this.schedule(0);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    // Each attempt has its own deadline: this wait is bounded by timeoutMs.
    await Promise.all([...this.inFlight]);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.poll(), ms).unref();
  }

  private async poll(): Promise<void> {
    if (this.closed || this.polling) return;
    this.polling = true;
    try {
      const free = this.c.concurrency - this.inFlight.size;
      if (free > 0) {
        const now = Date.now();
        const leaseMs = this.c.timeoutMs * 2 + LEASE_SLACK_MS;
        const due = await this.o.store.webhooks.claim(this.owner, now, leaseMs, free);
        for (const d of due) this.track(this.deliver(d));
        // A full batch: there may be more due at once.
        if (due.length === free) this.again = true;
      }
      if (Date.now() - this.lastExpire > EXPIRE_EVERY_MS) {
        this.lastExpire = Date.now();
        await this.o.store.webhooks.expire(this.o.config.retentionDays * 86_400_000);
      }
    } catch (error) {
      this.log.warn({ err: error }, "cannot read pending deliveries");
    } finally {
      this.polling = false;
    }
    if (this.again && this.inFlight.size < this.c.concurrency) {
      this.again = false;
      this.schedule(0);
    } else this.schedule(this.c.pollMs);
  }

  private track(work: Promise<void>): void {
    const p = work
      .catch((error: unknown) => this.log.warn({ err: error }, "delivery attempt not recorded"))
      .finally(() => {
        this.inFlight.delete(p);
        // A slot is free: look again soon if someone asked meanwhile.
        if (this.again && !this.polling) {
          this.again = false;
          this.schedule(0);
        }
      });
    this.inFlight.add(p);
  }

  private async deliver(d: Delivery): Promise<void> {
    const at = Date.now();
    const result = await this.attempt(d);
    const attempt = { attempt: d.attempts + 1, at, ...result };
    const ok = result.status !== null && result.status >= 200 && result.status < 300;
    const outcome = ok ? this.delivered(attempt) : this.failedAttempt(d, attempt);
    if (!(await this.o.store.webhooks.finishAttempt(d.id, this.owner, outcome))) return;
    const host = new URL(d.url).host;
    const data = { deliveryId: d.id, host, attempts: attempt.attempt, status: result.status };
    if (outcome.state === "delivered")
      this.o.audit({
        executionId: d.executionId,
        userId: d.userId,
        level: "info",
        event: "webhook_delivered",
        message: `callback delivered to ${host}`,
        data,
      });
    else if (outcome.state === "failed")
      this.o.audit({
        executionId: d.executionId,
        userId: d.userId,
        level: "warn",
        event: "webhook_failed",
        message: `callback to ${host} failed after ${attempt.attempt} attempts: ${result.error}`,
        data,
      });
  }

  private delivered(attempt: AttemptOutcome["attempt"]): AttemptOutcome {
    return { state: "delivered", nextAttemptAt: attempt.at, attempt };
  }

  /** Pending again after a backoff, or failed when out of attempts or time. */
  private failedAttempt(d: Delivery, attempt: AttemptOutcome["attempt"]): AttemptOutcome {
    const first = d.firstAttemptAt ?? attempt.at;
    const backoff = this.c.retryBaseMs * 2 ** (attempt.attempt - 1) * (0.8 + Math.random() * 0.4);
    const next = Date.now() + Math.round(backoff);
    const gaveUp =
      attempt.attempt >= this.c.maxAttempts || next > first + this.c.retryForSeconds * 1000;
    return { state: gaveUp ? "failed" : "pending", nextAttemptAt: next, attempt };
  }

  /** Renders, signs, checks the destination again and sends. */
  private async attempt(d: Delivery): Promise<AttemptResult> {
    const fail = (error: string): AttemptResult => ({ status: null, error, durationMs: 0 });
    const record = await this.o.store.records.get(d.executionId, true);
    if (!record) return fail("the execution's record is gone");
    const render = this.o.renderers[d.format as CallbackFormat];
    if (!render) return fail(`no renderer for format ${d.format}`);
    const secret = d.keyId ? await this.o.store.keys.webhookSecret(d.keyId) : null;
    if (!secret) return fail("the key that asked for this callback is gone");
    const url = new URL(d.url);
    // DNS again, now: what was checked at submission may resolve elsewhere today.
    const host = await checkHost(url.hostname, this.rules);
    if (!host.ok) {
      this.o.audit({
        executionId: d.executionId,
        userId: d.userId,
        level: "warn",
        event: "webhook_refused",
        message: `callback destination refused: ${host.reason}`,
        data: { deliveryId: d.id },
      });
      return fail(`refused destination: ${host.reason}`);
    }
    // A record a renderer cannot write (a bug, a corrupt row) is a failed attempt like any
    // other: recorded, backed off, given up in the end — not retried at every lease forever.
    let body: ReturnType<CallbackRenderer>;
    try {
      body = render(record);
    } catch (error) {
      return fail(`cannot render the callback: ${(error as Error).message}`.slice(0, 500));
    }
    const t = Math.floor(Date.now() / 1000);
    return sendAttempt({
      url,
      address: host.addresses[0]!,
      method: body.method,
      body: body.body,
      timeoutMs: this.c.timeoutMs,
      headers: {
        "content-type": body.contentType,
        "user-agent": `Warden-Webhooks/${packageVersion()}`,
        "warden-signature": signatureHeader(secret, t, body.body),
        "warden-delivery-id": d.id,
        "warden-event": EXECUTION_FINISHED_EVENT,
      },
    });
  }
}
