/** An in-process deliverer over a real store, with final executions to deliver. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../src/audit/logger.js";
import { ConfigSchema, type Config } from "../../src/config/schema.js";
import { blankResult } from "../../src/contract/result.js";
import { resolveLimits } from "../../src/executions/limits.js";
import type { NewEvent } from "../../src/store/records.js";
import { SqliteStore } from "../../src/store/sqlite/store.js";
import type { Store } from "../../src/store/store.js";
import { executionId } from "../../src/util/ids.js";
import { wardenCallback } from "../../src/webhooks/render.js";
import { WebhookService } from "../../src/webhooks/service.js";
import type { Lookup } from "../../src/webhooks/url-check.js";

export function testConfig(webhooks: Record<string, unknown> = {}): Config {
  return ConfigSchema.parse({ webhooks: { pollMs: 50, retryBaseMs: 100, ...webhooks } });
}

export function sqliteStore(): Store {
  return new SqliteStore(mkdtempSync(join(tmpdir(), "warden-webhooks-")));
}

/** A finished execution of `userId` in `store`; returns its id. */
export async function finishedExecution(
  store: Store,
  config: Config,
  userId: string,
): Promise<string> {
  const id = executionId();
  await store.records.queued({
    id,
    userId,
    keyId: null,
    source: "api",
    language: "bash",
    files: [{ path: "main.sh", content: "echo hi" }],
    limits: resolveLimits(config, {}),
    createdAt: Date.now(),
  });
  const result = { ...blankResult(id, "completed"), success: true, exitCode: 0, stdout: "hi\n" };
  await store.records.finished(id, result, Date.now());
  return id;
}

export function deliverer(
  store: Store,
  config: Config,
  lookup?: Lookup,
): { service: WebhookService; audited: NewEvent[] } {
  const audited: NewEvent[] = [];
  const service = new WebhookService({
    config,
    store,
    logger: silentLogger,
    audit: (e) => audited.push(e),
    renderers: { warden: wardenCallback, judge0: wardenCallback },
    lookup,
  });
  return { service, audited };
}
