/**
 * The Redis side of a cluster node: one connection for commands and
 * publishing, one for subscriptions (a subscribed connection can do nothing
 * else). Redis carries nothing that must survive it: when it is down, live
 * output and wake-ups pause (clients fall back to polling PostgreSQL) and the
 * process keeps serving. So errors are logged (at most one line per 10 s),
 * never thrown out of an event handler, and reconnects back off to 2 s.
 */
import { Redis } from "ioredis";
import type { Logger } from "../audit/logger.js";

export interface ClusterRedisOptions {
  url: string;
  /** Prefix of every key and channel (tests isolate with their own). */
  prefix: string;
  logger: Logger;
  /** Connection name shown by CLIENT LIST (the role). */
  name?: string;
}

type Handler = (message: Buffer) => void;

/** Longest wait between reconnect attempts: a Redis that comes back is used within this. */
const MAX_RECONNECT_DELAY_MS = 2000;
const ERROR_LOG_EVERY_MS = 10_000;

export class ClusterRedis {
  /** Commands and PUBLISH. Not queued while offline: a publish fails at once instead of piling up. */
  readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly handlers = new Map<string, Set<Handler>>();
  private lastErrorLog = 0;
  private closed = false;

  constructor(private readonly o: ClusterRedisOptions) {
    const common = {
      connectionName: o.name ?? "warden",
      retryStrategy: (times: number) => Math.min(100 * times, MAX_RECONNECT_DELAY_MS),
      maxRetriesPerRequest: 1,
      lazyConnect: false,
    };
    this.cmd = new Redis(o.url, { ...common, enableOfflineQueue: false });
    // The subscriber may queue its (few) SUBSCRIBEs until connected; it re-subscribes on reconnect.
    this.sub = new Redis(o.url, { ...common, enableOfflineQueue: true, autoResubscribe: true });
    for (const client of [this.cmd, this.sub]) client.on("error", (e: Error) => this.logError(e));
    this.sub.on("messageBuffer", (channel: Buffer, message: Buffer) =>
      this.dispatch(channel.toString("utf8"), message),
    );
  }

  private logError(error: Error): void {
    const now = Date.now();
    if (this.closed || now - this.lastErrorLog < ERROR_LOG_EVERY_MS) return;
    this.lastErrorLog = now;
    this.o.logger.warn({ reason: error.message }, "redis unavailable; live events paused");
  }

  /** The full name of a key or channel. */
  key(name: string): string {
    return this.o.prefix + name;
  }

  private dispatch(channel: string, message: Buffer): void {
    const set = this.handlers.get(channel);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        handler(message);
      } catch (error) {
        this.o.logger.error({ err: error, channel }, "redis message handler failed");
      }
    }
  }

  /** Publishes; false when Redis could not take it (the reader's poll of PostgreSQL covers it). */
  async publish(channel: string, message: unknown): Promise<boolean> {
    if (this.closed) return false;
    try {
      await this.cmd.publish(this.key(channel), JSON.stringify(message));
      return true;
    } catch (error) {
      this.logError(error as Error);
      return false;
    }
  }

  /** Calls `handler` with each raw message on `channel` until the returned function is called. */
  subscribe(channel: string, handler: Handler): () => void {
    const full = this.key(channel);
    let set = this.handlers.get(full);
    if (!set) {
      set = new Set();
      this.handlers.set(full, set);
      this.sub.subscribe(full).catch((e: Error) => this.logError(e));
    }
    set.add(handler);
    return () => {
      const current = this.handlers.get(full);
      if (!current?.delete(handler) || current.size > 0) return;
      this.handlers.delete(full);
      if (!this.closed) this.sub.unsubscribe(full).catch((e: Error) => this.logError(e));
    };
  }

  /** Channels with a live subscription here (tests check nothing leaks). */
  get subscriptionCount(): number {
    return this.handlers.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    await Promise.allSettled([this.cmd.quit(), this.sub.quit()]);
    this.cmd.disconnect();
    this.sub.disconnect();
  }
}
