/**
 * Callbacks as an attacker would use them: to reach Warden's loopback, the
 * private network or the metadata service (refused at submission, and again
 * at delivery when DNS changes its answer), to be led elsewhere by a
 * redirect, to hold an attempt open, or to flood Warden with an answer.
 * No test sends a packet anywhere but 127.0.0.1: refused destinations are
 * refused before any connection, and stand-in resolvers answer the rest.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WardenError } from "../../src/errors.js";
import type { Store } from "../../src/store/store.js";
import {
  createKey,
  eventually,
  rssBytes,
  startServer,
  type TestServer,
} from "../helpers/server.js";
import { deliverer, finishedExecution, sqliteStore, testConfig } from "./fixture.js";
import { silentLogger } from "../../src/audit/logger.js";
import type { NewEvent } from "../../src/store/records.js";
import { wardenCallback } from "../../src/webhooks/render.js";
import { WebhookService } from "../../src/webhooks/service.js";
import { startReceiver, type Receiver } from "./receiver.js";

let server: TestServer;
let receiver: Receiver;
let other: Receiver;
let alice: string;

beforeAll(async () => {
  receiver = await startReceiver();
  other = await startReceiver();
  server = await startServer({
    config: {
      webhooks: { allowHosts: ["127.0.0.1"], pollMs: 100, retryBaseMs: 200, timeoutMs: 1000 },
    },
  });
  alice = await createKey(server, "alice-app", "execute", "alice");
});
afterAll(async () => {
  await server?.stop();
  await receiver?.close();
  await other?.close();
});

interface Logged {
  state: string;
  attempts: number;
  log: { status: number | null; error: string | null }[];
}
async function deliveryOf(id: string): Promise<Logged | undefined> {
  const res = await server.request("GET", `/v1/webhooks/deliveries?executionId=${id}`, {
    token: alice,
  });
  return ((await res.json()) as { deliveries: Logged[] }).deliveries[0];
}
async function submit(path: string): Promise<string> {
  const res = await server.request("POST", "/v1/executions", {
    token: alice,
    body: { language: "bash", code: "true", wait: false, callbackUrl: `${receiver.url}${path}` },
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

describe("refused at submission: nothing runs", () => {
  const refused = [
    "http://localhost:9/x",
    "http://localhost.:9/x",
    "http://app.localhost/x",
    "http://127.0.0.2:9/x",
    "http://0x7f.0.0.2/x", // 127.0.0.2 to every URL parser
    "http://10.0.0.1/x",
    "http://192.168.1.1/x",
    "http://100.64.0.1/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[::1]:9/x",
    "http://[::ffff:127.0.0.1]:9/x",
    "http://[fd00:ec2::254]/x",
    "http://[fe80::1]/x",
    "http://0.0.0.0:9/x",
    "http://224.0.0.1/x",
    "ftp://example.com/x",
    "file:///etc/passwd",
    "http://user:pass@127.0.0.1:9/x",
    "not a url",
  ];
  it.each(refused)("%s", async (url) => {
    const before = server.count("executions");
    const res = await server.request("POST", "/v1/executions", {
      token: alice,
      body: { language: "bash", code: "echo ran", callbackUrl: url },
    });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("INVALID_REQUEST");
    expect(error.message).toMatch(/^callbackUrl: /);
    expect(server.count("executions")).toBe(before);
  });

  it("a refused URL in a batch refuses the batch", async () => {
    const before = server.count("executions");
    const res = await server.request("POST", "/v1/executions/batch", {
      token: alice,
      body: { callbackUrl: "http://169.254.169.254/", items: [{ language: "bash", code: "true" }] },
    });
    expect(res.status).toBe(400);
    expect(server.count("executions")).toBe(before);
    expect(server.count("events", "event = 'webhook_refused'")).toBeGreaterThan(0);
  });
});

describe("hostile receivers", () => {
  it("a redirect is not followed", async () => {
    receiver.answer = (req, res) => {
      if (req.path !== "/redirect") return void res.end();
      res.writeHead(307, { location: `${other.url}/stolen` }).end();
    };
    const id = await submit("/redirect");
    await eventually(async () => ((await deliveryOf(id))?.attempts ?? 0) >= 2);
    const d = (await deliveryOf(id))!;
    expect(d.log[0]).toEqual(
      expect.objectContaining({ status: 307, error: "HTTP 307: redirects are not followed" }),
    );
    expect(other.received).toHaveLength(0);
  });

  it("a receiver that never answers times out, and the delivery is retried", async () => {
    receiver.answer = (req, res) => {
      const n = receiver.received.filter((r) => r.path === "/slow").length;
      if (req.path === "/slow" && n === 1) return; // holds the attempt open
      res.end();
    };
    const id = await submit("/slow");
    await eventually(async () => (await deliveryOf(id))?.state === "delivered");
    const d = (await deliveryOf(id))!;
    expect(d.log.map((a) => a.error)).toEqual(["timed out after 1000 ms", null]);
  });

  it("a receiver that answers an endless body does not grow Warden's memory", async () => {
    let sent = 0;
    receiver.answer = (req, res) => {
      if (req.path !== "/flood") return void res.end();
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      const pump = (): void => {
        while (sent < 2 * 1024 ** 3 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      res.on("error", () => undefined);
      pump();
    };
    const pid = server.process.pid!;
    const before = rssBytes(pid);
    const ids = [await submit("/flood"), await submit("/flood")];
    for (const id of ids)
      await eventually(async () => (await deliveryOf(id))?.state === "delivered");
    // Warden read a few KB of each answer and hung up: the receiver stopped far short of 2 GiB.
    expect(sent).toBeLessThan(64 * 1024 ** 2);
    expect(rssBytes(pid) - before).toBeLessThan(64 * 1024 ** 2);
    expect((await server.request("GET", "/healthz")).status).toBe(200);
  });
});

describe("in process, with a stand-in resolver", () => {
  let store: Store;
  beforeAll(() => {
    store = sqliteStore();
  });
  afterAll(async () => {
    await store.close();
  });

  const refusal = async (p: Promise<unknown>): Promise<string> => {
    const error = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe("INVALID_REQUEST");
    return (error as WardenError).message;
  };

  it("refuses loopback without allowHosts, and names that resolve to refused addresses", async () => {
    const answers: Record<string, string[]> = {
      "hooks.example": ["127.0.0.1"],
      "mixed.example": ["93.184.216.34", "10.1.2.3"],
      "meta.example": ["169.254.169.254"],
      "v6.example": ["::1"],
      "ok.example": ["93.184.216.34"],
    };
    const lookup = async (name: string) =>
      (answers[name] ?? []).map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    const { service } = deliverer(store, testConfig(), lookup);
    expect(await refusal(service.checkUrl("http://127.0.0.1:8080/", "callbackUrl"))).toMatch(
      /^callbackUrl: refused destination: 127\.0\.0\.1/,
    );
    for (const host of [
      "hooks.example",
      "mixed.example",
      "meta.example",
      "v6.example",
      "nx.example",
    ])
      expect(await refusal(service.checkUrl(`https://${host}/`, "items[2].callbackUrl"))).toMatch(
        /^items\[2\]\.callbackUrl: refused destination/,
      );
    expect(await service.checkUrl("https://ok.example/hook", "callbackUrl")).toBe(
      "https://ok.example/hook",
    );
    // Allowed hosts may be private, never metadata.
    const allowing = deliverer(
      store,
      testConfig({ allowHosts: ["meta.example", "169.254.169.254", "hooks.example"] }),
      lookup,
    ).service;
    expect(await allowing.checkUrl("http://hooks.example:1/", "callbackUrl")).toBe(
      "http://hooks.example:1/",
    );
    await refusal(allowing.checkUrl("http://meta.example/", "callbackUrl"));
    await refusal(allowing.checkUrl("http://169.254.169.254/", "callbackUrl"));
  });

  it("a name that re-resolves to loopback after the check (DNS rebinding) is never dialled", async () => {
    const trap = await startReceiver();
    const port = new URL(trap.url).port;
    let calls = 0;
    // Public when checked at submission; 127.0.0.1 (the trap) when the delivery is due.
    const lookup = async () => [
      { address: calls++ === 0 ? "93.184.216.34" : "127.0.0.1", family: 4 },
    ];
    const config = testConfig({ maxAttempts: 2 });
    const { service, audited } = deliverer(store, config, lookup);
    const d = await deliverUntilFailed(
      store,
      service,
      config,
      "mallory",
      `http://rebind.example:${port}/x`,
      trap,
    );
    expect(d.lastError).toMatch(/refused destination: rebind\.example resolves to 127\.0\.0\.1/);
    expect(audited.map((e) => e.event)).toContain("webhook_refused");
    expect(audited.map((e) => e.event)).toContain("webhook_failed");
  });

  it("a renderer that throws is a failed attempt, recorded and given up, not retried forever", async () => {
    const target = await startReceiver();
    const config = testConfig({ maxAttempts: 2, allowHosts: ["127.0.0.1"] });
    const audited: NewEvent[] = [];
    const service = new WebhookService({
      config,
      store,
      logger: silentLogger,
      audit: (e) => audited.push(e),
      renderers: {
        warden: () => {
          throw new Error("corrupt record");
        },
        judge0: wardenCallback,
      },
    });
    const d = await deliverUntilFailed(store, service, config, "rita", `${target.url}/r`, target);
    expect(d.attempts).toBe(2);
    expect(d.lastError).toMatch(/cannot render the callback: corrupt record/);
  });
});

/**
 * Registers a callback for a finished execution of `userId`, runs the deliverer
 * until the delivery has failed, and checks `receiver` got nothing.
 */
async function deliverUntilFailed(
  store: Store,
  service: WebhookService,
  config: ReturnType<typeof testConfig>,
  userId: string,
  target: string,
  receiver: Receiver,
) {
  const key = await store.keys.create({ name: "k", scopes: ["execute"], userId });
  const url = await service.checkUrl(target, "callbackUrl");
  const id = await finishedExecution(store, config, userId);
  await service.register({ executionId: id, userId, keyId: key.key.id, url, format: "warden" });
  service.start();
  try {
    await eventually(
      async () => (await store.webhooks.list({ executionId: id, limit: 1 }))[0]?.state === "failed",
    );
  } finally {
    await service.close();
    await receiver.close();
  }
  expect(receiver.received).toHaveLength(0);
  const [d] = await store.webhooks.list({ executionId: id, limit: 1 });
  return d!;
}
