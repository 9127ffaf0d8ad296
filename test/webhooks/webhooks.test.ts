/**
 * Batches and signed callbacks through a real `warden serve`: a receiver on
 * loopback (allowed by webhooks.allowHosts in this config) gets deliveries it
 * verifies with the algorithm in docs/webhooks.md; retries and the log.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, eventually, startServer, type TestServer } from "../helpers/server.js";
import { startReceiver, type Receiver } from "./receiver.js";

let server: TestServer;
let receiver: Receiver;
let alice: string;
let bob: string;

/** The receiver's check, as docs/webhooks.md gives it. */
function verify(secret: string, header: string, body: string, toleranceS = 300): boolean {
  const parts: Record<string, string> = Object.fromEntries(
    header.split(",").map((kv) => kv.split("=")),
  );
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceS) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest();
  const given = Buffer.from(parts.v1 ?? "", "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

interface Delivery {
  id: string;
  executionId: string;
  batchId: string | null;
  state: string;
  attempts: number;
  log: { attempt: number; status: number | null; error: string | null }[];
}

async function deliveries(token: string, query = ""): Promise<Delivery[]> {
  const res = await server.request("GET", `/v1/webhooks/deliveries${query}`, { token });
  expect(res.status).toBe(200);
  return ((await res.json()) as { deliveries: Delivery[] }).deliveries;
}

async function secretOf(token: string): Promise<string> {
  const res = await server.request("GET", "/v1/webhooks/secret", { token });
  expect(res.status).toBe(200);
  return ((await res.json()) as { secret: string }).secret;
}

beforeAll(async () => {
  receiver = await startReceiver();
  server = await startServer({
    config: {
      webhooks: { allowHosts: ["127.0.0.1"], pollMs: 100, retryBaseMs: 200, timeoutMs: 3000 },
    },
  });
  alice = await createKey(server, "alice-app", "execute", "alice");
  bob = await createKey(server, "bob-app", "execute", "bob");
});
afterAll(async () => {
  await server?.stop();
  await receiver?.close();
});

describe("callbacks", () => {
  it("delivers a signed result the receiver can verify", async () => {
    const res = await server.request("POST", "/v1/executions", {
      token: alice,
      body: { language: "bash", code: "echo hi", wait: false, callbackUrl: `${receiver.url}/a` },
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await eventually(async () => receiver.received.some((r) => r.path === "/a"));
    const got = receiver.received.find((r) => r.path === "/a")!;
    expect(got.method).toBe("POST");
    expect(got.headers["content-type"]).toBe("application/json");
    expect(got.headers["warden-event"]).toBe("execution.finished");
    expect(got.headers["user-agent"]).toMatch(/^Warden-Webhooks\//);
    expect(got.headers["warden-delivery-id"]).toMatch(/^dlv_/);
    const secret = await secretOf(alice);
    expect(verify(secret, String(got.headers["warden-signature"]), got.body)).toBe(true);
    // Another key's secret, or a changed body, does not verify.
    expect(verify(await secretOf(bob), String(got.headers["warden-signature"]), got.body)).toBe(
      false,
    );
    expect(verify(secret, String(got.headers["warden-signature"]), got.body + " ")).toBe(false);
    const body = JSON.parse(got.body) as { id: string; status: string; stdout: string };
    expect(body).toMatchObject({ id, status: "completed", stdout: "hi\n" });
    await eventually(async () => (await deliveries(alice))[0]?.state === "delivered");
    const [d] = await deliveries(alice, `?executionId=${id}`);
    expect(d).toMatchObject({ executionId: id, state: "delivered", attempts: 1 });
    expect(d!.log.map((a) => a.status)).toEqual([200]);
    // Bob sees none of Alice's deliveries.
    expect(await deliveries(bob, `?executionId=${id}`)).toEqual([]);
  });

  it("retries a failing receiver with the same delivery id, and logs each attempt", async () => {
    receiver.answer = (req, res) => {
      const earlier = receiver.received.filter((r) => r.path === "/flaky").length;
      res.statusCode = req.path === "/flaky" && earlier === 1 ? 500 : 200;
      res.end();
    };
    const res = await server.request("POST", "/v1/executions", {
      token: alice,
      body: { language: "bash", code: "exit 3", callbackUrl: `${receiver.url}/flaky` },
    });
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: string };
    await eventually(
      async () => (await deliveries(alice, `?executionId=${id}`))[0]?.state === "delivered",
    );
    const hits = receiver.received.filter((r) => r.path === "/flaky");
    expect(hits).toHaveLength(2);
    expect(hits[0]!.headers["warden-delivery-id"]).toBe(hits[1]!.headers["warden-delivery-id"]);
    const [d] = await deliveries(alice, `?executionId=${id}`);
    expect(d!.attempts).toBe(2);
    expect(d!.log.map((a) => [a.status, a.error])).toEqual([
      [500, "HTTP 500"],
      [200, null],
    ]);
    expect(JSON.parse(hits[1]!.body)).toMatchObject({ id, status: "failed", exitCode: 3 });
  });

  it("rotating the secret signs later deliveries with the new one", async () => {
    const before = await secretOf(bob);
    const res = await server.request("POST", "/v1/webhooks/secret/rotate", { token: bob });
    expect(res.status).toBe(200);
    const after = ((await res.json()) as { secret: string }).secret;
    expect(after).not.toBe(before);
    expect(after).toMatch(/^[0-9a-f]{64}$/);
    expect(await secretOf(bob)).toBe(after);
  });
});

describe("batches", () => {
  it("queues every item, one id each, with the batch's callback; ?ids= returns them in order", async () => {
    receiver.answer = (_req, res) => res.end();
    const res = await server.request("POST", "/v1/executions/batch", {
      token: alice,
      body: {
        callbackUrl: `${receiver.url}/batch`,
        items: [
          { language: "bash", code: "echo 0" },
          { language: "bash", code: "echo 1", callbackUrl: `${receiver.url}/own` },
          { language: "bash", code: "echo 2", wait: true },
        ],
      },
    });
    expect(res.status).toBe(202);
    const batch = (await res.json()) as {
      batchId: string;
      executions: { id: string; status: string }[];
    };
    expect(batch.batchId).toMatch(/^batch_/);
    expect(batch.executions.map((e) => e.status)).toEqual(["queued", "queued", "queued"]);
    const ids = batch.executions.map((e) => e.id);
    await eventually(async () => {
      const r = await server.request("GET", `/v1/executions?ids=${ids.join(",")}`, {
        token: alice,
      });
      const list = (await r.json()) as { executions: { status: string }[] };
      return list.executions.every((e) => e.status === "completed");
    });
    const asked = [ids[2]!, ids[0]!, ids[1]!];
    const r = await server.request("GET", `/v1/executions?ids=${asked.join(",")}`, {
      token: alice,
    });
    const list = (await r.json()) as { executions: { id: string }[]; nextCursor: string | null };
    expect(list.executions.map((e) => e.id)).toEqual(asked);
    expect(list.nextCursor).toBeNull();
    await eventually(
      async () => receiver.received.filter((x) => /^\/(batch|own)$/.test(x.path)).length === 3,
    );
    const paths = receiver.received
      .filter((x) => /^\/(batch|own)$/.test(x.path))
      .map((x) => x.path);
    expect(paths.sort()).toEqual(["/batch", "/batch", "/own"]);
    const logged = await deliveries(alice, `?executionId=${ids[0]}`);
    expect(logged[0]!.batchId).toBe(batch.batchId);
  });

  it("refuses the whole batch for one invalid item, naming it, and runs nothing", async () => {
    const before = server.count("executions");
    for (const bad of [
      { language: "bash", code: "echo x", limits: { memoryMb: 10_000_000 } },
      { language: "no-such-language", code: "x" },
      { language: "bash", files: [{ path: "../escape", content: "x" }] },
      { language: "bash", code: "echo x", callbackUrl: "http://10.0.0.1/x" },
    ]) {
      const res = await server.request("POST", "/v1/executions/batch", {
        token: alice,
        body: { items: [{ language: "bash", code: "echo fine" }, bad] },
      });
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.message).toMatch(/items\[1\]\./);
    }
    const tooMany = await server.request("POST", "/v1/executions/batch", {
      token: alice,
      body: { items: Array.from({ length: 21 }, () => ({ language: "bash", code: "true" })) },
    });
    expect(tooMany.status).toBe(400);
    expect(((await tooMany.json()) as { error: { message: string } }).error.message).toMatch(/20/);
    expect(server.count("executions")).toBe(before);
  });
});

describe("GET /v1/executions?ids=", () => {
  it("shows only what the caller may see, in the order asked; bad ids are refused", async () => {
    const run = async (token: string): Promise<string> => {
      const res = await server.request("POST", "/v1/executions", {
        token,
        body: { language: "bash", code: "true" },
      });
      return ((await res.json()) as { id: string }).id;
    };
    const a = await run(alice);
    const b = await run(bob);
    const missing = "exec_00000000000000000000000000";
    const get = async (token: string | undefined, ids: string) => {
      const res = await server.request("GET", `/v1/executions?ids=${ids}`, { token });
      return { status: res.status, body: (await res.json()) as { executions: { id: string }[] } };
    };
    expect((await get(alice, `${b},${a},${missing}`)).body.executions.map((e) => e.id)).toEqual([
      a,
    ]);
    expect((await get(undefined, `${b},${a}`)).body.executions.map((e) => e.id)).toEqual([b, a]);
    // Filters still apply with ids.
    expect((await get(alice, `${a}&status=failed`)).body.executions).toEqual([]);
    expect((await get(alice, "not-an-id")).status).toBe(400);
    const many = Array.from({ length: 101 }, () => a).join(",");
    expect((await get(alice, many)).status).toBe(400);
  });
});
