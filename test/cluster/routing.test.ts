/**
 * An API node routing session calls to the worker that holds them, in one
 * process on loopback: a real Warden's internal listener (the worker, real
 * sandboxes) and a second server built with cluster routing whose own
 * session manager throws if touched, so every answer below came through the
 * internal channel. PostgreSQL holds the worker rows and the registry.
 */
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { clusterRouting } from "../../src/cluster/forward.js";
import { signRequest, verifyRequest } from "../../src/cluster/internal-auth.js";
import { startInternalServer, type InternalServer } from "../../src/cluster/internal-server.js";
import { Placement } from "../../src/cluster/placement.js";
import { WorkerDirectory } from "../../src/cluster/worker-directory.js";
import { buildServer } from "../../src/http/server.js";
import type { SessionManager } from "../../src/sessions/manager.js";
import type { SessionHooks } from "../../src/sessions/types.js";
import type { SessionRegistry } from "../../src/store/store.js";
import { openWarden, type EmbeddedWarden } from "../../src/warden.js";
import { Redis } from "ioredis";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { randomBytes } from "node:crypto";
import { redisLimiters } from "../../src/cluster/rate-limit-redis.js";
import { clusterAdminRoutes, clusterMetrics } from "../../src/cluster/admin.js";
import { freshDatabase, putWorker, type TestDatabase } from "./routing-fixture.js";

const SECRET = "routing-test-secret-0123456789abcdef";
let db: TestDatabase;
let warden: EmbeddedWarden;
let worker: InternalServer;
let api: Awaited<ReturnType<typeof buildServer>>;
let apiUrl: string;
let fake: Server;
let fakeSeen: { headers: Record<string, unknown>; url: string; method: string }[] = [];
let ann: string;
let bob: string;
let admin: string;
let erin: string;
let base: string;
let registry: SessionRegistry;

const call = (
  method: string,
  path: string,
  token: string,
  body?: RequestInit["body"],
  type?: string,
) =>
  fetch(`${apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(type ? { "content-type": type } : {}) },
    body,
  });

/** An API node's own session manager: any use means a call was not forwarded. */
const untouchable = new Proxy(
  {},
  {
    get: (_t, p) => {
      if (p === "then" || typeof p === "symbol") return undefined;
      throw new Error(`the API node used its own sessions.${String(p)}`);
    },
  },
) as SessionManager;

beforeAll(async () => {
  db = await freshDatabase();
  registry = db.store.sessions;
  warden = await openWarden({
    env: {
      WARDEN_DATA_DIR: mkdtempSync(join(tmpdir(), "warden-routing-")),
      WARDEN_RUN_DIR: "/run/warden-routing",
      WARDEN_CGROUP_PARENT: "warden-routing",
      WARDEN_UID_BASE: "914000",
      WARDEN_UID_COUNT: "100",
      WARDEN_POOL: "false",
    },
    logger: silentLogger,
  });
  // What the cluster wiring does on a worker (H2): sessions register with its id.
  (warden.sessions as unknown as { hooks: SessionHooks }).hooks.registry = {
    workerId: "w-real",
    register: (row) => registry.register(row),
    ended: (id, reason, at) => registry.ended(id, reason, at),
  };
  const keys = warden.store.keys;
  ann = (await keys.create({ name: "ann", scopes: ["sessions"], userId: "ann" })).token;
  bob = (await keys.create({ name: "bob", scopes: ["sessions"], userId: "bob" })).token;
  admin = (await keys.create({ name: "ops", scopes: ["admin"], userId: "ops" })).token;
  erin = (await keys.create({ name: "erin", scopes: ["sessions"], userId: "erin" })).token;
  const deps = { ...warden, config: warden.config, logger: silentLogger, service: warden, keys };
  worker = await startInternalServer(deps, { secret: SECRET });
  await putWorker(db.pool, { id: "w-real", url: worker.url });
  const workers = new WorkerDirectory(db.pool, 5000);
  const placement = new Placement(
    workers,
    { maxSandboxesPerUser: 5, maxSessionsPerUser: 5 },
    (userId) => registry.liveCountOf(userId),
  );
  const routing = clusterRouting({
    secret: SECRET,
    workers,
    registry,
    placement,
    maxBodyBytes: warden.config.maxFileBytes + 1024 * 1024,
    routes: async (app) => {
      await app.register(clusterAdminRoutes, { workers });
    },
  });
  clusterMetrics(warden.metrics.registry, workers);
  api = await buildServer({ ...deps, sessions: untouchable, routing });
  apiUrl = await api.listen({ host: "127.0.0.1", port: 0 });
  fake = createServer((req, res) => {
    fakeSeen.push({ headers: req.headers, url: req.url ?? "", method: req.method ?? "" });
    res.writeHead(200, { "content-type": "application/json", "x-from": "fake" });
    res.end(JSON.stringify({ fake: true }));
  });
  await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r));
  const created = await call("POST", "/v1/sessions", ann, "{}", "application/json");
  expect(created.status).toBe(201);
  base = `/v1/sessions/${((await created.json()) as { id: string }).id}`;
}, 120_000);

afterAll(async () => {
  await api?.close();
  await warden?.sessions.closeAll();
  await worker?.close();
  await warden?.shutdown(1000);
  fake?.close();
  await db?.drop();
});

describe("routing through an API node", () => {
  it("places the create on the worker and registers it there", async () => {
    const row = await registry.get(base.split("/").pop()!);
    expect(row).toMatchObject({ userId: "ann", workerId: "w-real", endedAt: null });
    expect(row?.keyId).toMatch(/^key_|.+/);
    const info = await call("GET", base, ann);
    expect(info.status).toBe(200);
    expect(await info.json()).toMatchObject({ userId: "ann", status: "running" });
    const list = await call("GET", "/v1/sessions", ann);
    expect(((await list.json()) as { id: string }[]).map((s) => s.id)).toContain(
      base.split("/").pop(),
    );
  });

  it("round-trips a file upload and download, bytes exact", async () => {
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 256));
    const put = await call(
      "PUT",
      `${base}/files/data/blob.bin`,
      ann,
      bytes,
      "application/octet-stream",
    );
    expect(put.status).toBe(204);
    const got = await call("GET", `${base}/files/data/blob.bin`, ann);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it("streams a background command's SSE through, event by event", async () => {
    const started = await call(
      "POST",
      `${base}/commands`,
      ann,
      JSON.stringify({ command: "echo one; sleep 1; echo two", background: true }),
      "application/json",
    );
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    const events = await call("GET", `${base}/commands/${id}/events`, ann);
    expect(events.headers.get("content-type")).toMatch(/text\/event-stream/);
    const reader = events.body!.getReader();
    let text = "";
    let firstAt = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
      // "one" arrives before "two" is even printed: nothing buffered the stream.
      if (!firstAt && text.includes("one")) {
        firstAt = Date.now();
        expect(text).not.toContain("two");
      }
      if (text.includes("event: result")) break;
    }
    await reader.cancel();
    expect(text).toContain("two");
  });

  it("passes a preview answer and a WebSocket-style upgrade through", async () => {
    const server = `const http=require("node:http");
const s=http.createServer((q,r)=>r.end("preview says hi "+q.url));
s.on("upgrade",(q,sock)=>{sock.write("HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: echo\\r\\nConnection: Upgrade\\r\\n\\r\\n");sock.pipe(sock);});
s.listen(9100,"127.0.0.1");`;
    await call("PUT", `${base}/files/p.cjs`, ann, server, "application/octet-stream");
    await call(
      "POST",
      `${base}/commands`,
      ann,
      JSON.stringify({ command: ["node", "p.cjs"], background: true }),
      "application/json",
    );
    let page: Response | undefined;
    for (let i = 0; i < 50; i++) {
      page = await call("GET", `${base}/ports/9100/x?y=1`, ann);
      if (page.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(page?.status).toBe(200);
    expect(await page!.text()).toBe("preview says hi /x?y=1");
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${apiUrl}${base}/ports/9100/ws`, {
        headers: { authorization: `Bearer ${ann}`, connection: "Upgrade", upgrade: "echo" },
      });
      req.on("upgrade", (res, socket: Socket) => {
        expect(res.statusCode).toBe(101);
        socket.write("ping through two hops");
        socket.once("data", (d) => {
          resolve(d.toString());
          socket.destroy();
        });
      });
      req.on("response", (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on("error", reject);
      req.end();
    });
    expect(echoed).toBe("ping through two hops");
    // Someone else's session: refused at the API node, before any worker is asked.
    const refused = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${apiUrl}${base}/ports/9100/ws`, {
        headers: { authorization: `Bearer ${bob}`, connection: "Upgrade", upgrade: "echo" },
      });
      req.on("upgrade", (_res, socket: Socket) => {
        socket.destroy();
        reject(new Error("upgraded"));
      });
      req.on("response", (res) => resolve(res.statusCode ?? 0));
      req.on("error", reject);
      req.end();
    });
    expect(refused).toBe(404);
  });

  it("answers not found for another user's session (API node and worker both check)", async () => {
    const r = await call("GET", base, bob);
    expect(r.status).toBe(404);
  });

  it("routes by the registry, signed, with no user key passed on", async () => {
    const port = (fake.address() as AddressInfo).port;
    await putWorker(db.pool, { id: "w-fake", url: `http://127.0.0.1:${port}` });
    const id = "sess_01J00000000000000000000FAK";
    await registry.register({
      id,
      userId: "ann",
      keyId: null,
      workerId: "w-fake",
      language: null,
      createdAt: Date.now(),
    });
    fakeSeen = [];
    const r = await call("GET", `/v1/sessions/${id}/files?dir=src`, ann);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-from")).toBe("fake");
    expect(await r.json()).toEqual({ fake: true });
    const [seen] = fakeSeen;
    expect(seen?.url).toBe(`/v1/sessions/${id}/files?dir=src`);
    expect(seen?.headers.authorization).toBeUndefined();
    const principal = verifyRequest(SECRET, seen!.headers as never, "GET", seen!.url);
    expect(principal).toMatchObject({ userId: "ann", scopes: ["sessions"] });
  });

  it("answers a session on a gone worker as ended: worker_lost", async () => {
    await putWorker(db.pool, {
      id: "w-dead",
      url: "http://127.0.0.1:9",
      heartbeatAt: Date.now() - 60_000,
    });
    const id = "sess_01J00000000000000000000DED";
    await registry.register({
      id,
      userId: "ann",
      keyId: null,
      workerId: "w-dead",
      language: null,
      createdAt: Date.now(),
    });
    const r = await call("GET", `/v1/sessions/${id}`, ann);
    expect(r.status).toBe(410);
    const body = (await r.json()) as {
      error: { code: string; message: string; details?: unknown };
    };
    expect(body.error.message).toMatch(/ended: worker_lost/);
    expect(body.error).toMatchObject({ details: { reason: "worker_lost" } });
  });

  it("answers 502 with the error shape, no stack, when a live worker does not answer", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await putWorker(db.pool, { id: "w-down", url: `http://127.0.0.1:${port}` });
    const id = "sess_01J00000000000000000000DWN";
    await registry.register({
      id,
      userId: "ann",
      keyId: null,
      workerId: "w-down",
      language: null,
      createdAt: Date.now(),
    });
    const r = await call("GET", `/v1/sessions/${id}`, ann);
    expect(r.status).toBe(502);
    const text = await r.text();
    expect(JSON.parse(text)).toMatchObject({ error: { code: "UPSTREAM_UNAVAILABLE" } });
    expect(text).not.toMatch(/at .*\.js|ECONNREFUSED|127\.0\.0\.1/);
  });

  it("refuses a user key and a forged principal at the internal listener, and stays up", async () => {
    const direct = await fetch(`${worker.url}${base}`, {
      headers: { authorization: `Bearer ${ann}` },
    });
    expect(direct.status).toBe(401);
    const target = base;
    const forged = signRequest("x".repeat(40), "GET", target, {
      userId: "ann",
      keyId: null,
      scopes: ["admin"],
      networkAllow: null,
      policy: null,
      ip: "1.2.3.4",
      requestId: "r",
    });
    const r = await fetch(`${worker.url}${target}`, { headers: forged });
    expect(r.status).toBe(401);
    // Replayed on another path: refused too.
    const good = signRequest(SECRET, "GET", target, {
      userId: "ann",
      keyId: null,
      scopes: ["sessions"],
      networkAllow: null,
      policy: null,
      ip: "1.2.3.4",
      requestId: "r",
    });
    expect((await fetch(`${worker.url}${target}/files`, { headers: good })).status).toBe(401);
    expect((await fetch(`${worker.url}${target}`, { headers: good })).status).toBe(200);
    // An oversized principal: refused before it is decoded.
    const huge = { ...good, "x-warden-principal": "A".repeat(12_000) };
    expect((await fetch(`${worker.url}${target}`, { headers: huge })).status).toBe(401);
    expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);
    expect((await call("GET", base, ann)).status).toBe(200);
  });

  it("ends the registry row when the session is deleted through the API node", async () => {
    const id = base.split("/").pop()!;
    expect((await call("DELETE", base, ann)).status).toBe(204);
    expect((await registry.get(id))?.endedAt).toEqual(expect.any(Number));
    const after = await call("GET", base, ann);
    expect(after.status).toBe(410);
  });

  it("makes two API nodes' Gates share a key's rate limit through Redis", async () => {
    const redis = new Redis(process.env.WARDEN_TEST_REDIS_URL ?? "redis://127.0.0.1:6379");
    await redis.ping();
    const prefix = `warden_t_${randomBytes(6).toString("hex")}:`;
    const server = warden.config.server;
    const config = {
      ...warden.config,
      server: {
        ...server,
        rateLimits: { ...server.rateLimits, perKey: { burst: 100, perMinute: 4, perHour: 100 } },
      },
    };
    const keys = warden.store.keys;
    const deps = { ...warden, config, logger: silentLogger, service: warden, keys };
    const limiters = redisLimiters(redis, silentLogger, prefix);
    const nodes = await Promise.all([0, 1].map(() => buildServer({ ...deps, limiters })));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const r = await nodes[i % 2]!.inject({
          method: "GET",
          url: "/v1/sessions",
          headers: { authorization: `Bearer ${bob}` },
        });
        statuses.push(r.statusCode);
      }
      // Four per minute for the key across both nodes (one more if a minute turned meanwhile).
      expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(5);
      expect(statuses.slice(-2)).toEqual([429, 429]);
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
      const left = await redis.keys(`${prefix}*`);
      if (left.length > 0) await redis.del(...left);
      redis.disconnect();
    }
  });

  it("shows the cluster to admins, in OpenAPI and in /metrics", async () => {
    await putWorker(db.pool, { id: "w-busy", url: "http://127.0.0.1:9", running: 3 });
    await db.pool.query(
      `INSERT INTO executions (id, user_id, source, language, status, code_sha256, code_bytes,
         limits, created_at, worker_id) VALUES ('ex_1', 'carol', 'api', 'python', 'running',
         'x', 1, '{}', 1, 'w-busy'), ('ex_2', 'carol', 'api', 'python', 'queued', 'x', 1, '{}', 2, NULL)`,
    );
    expect((await call("GET", "/api/sandbox/cluster", ann)).status).toBe(403);
    const r = await call("GET", "/api/sandbox/cluster", admin);
    expect(r.status).toBe(200);
    const view = (await r.json()) as {
      workers: { id: string; alive: boolean; running: number }[];
      totals: { queued: number; workers: Record<string, number> };
      users: { userId: string; running: number; sessions: number }[];
    };
    expect(view.workers.find((w) => w.id === "w-real")).toMatchObject({ alive: true });
    expect(view.workers.find((w) => w.id === "w-dead")).toMatchObject({ alive: false });
    expect(view.workers.find((w) => w.id === "w-busy")).toMatchObject({ running: 3 });
    expect(view.totals.queued).toBe(1);
    expect(view.users).toContainEqual({ userId: "carol", running: 1, sessions: 0 });
    expect(view.users.find((u) => u.userId === "ann")?.sessions).toBeGreaterThan(0);
    const spec = (await (await fetch(`${apiUrl}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    expect(spec.paths).toHaveProperty("/api/sandbox/cluster");
    const metrics = await (await fetch(`${apiUrl}/metrics`)).text();
    expect(metrics).toMatch(/warden_cluster_workers\{state="active"\} \d+/);
    expect(metrics).toMatch(/warden_cluster_queued 1/);
    expect(metrics).toMatch(/warden_cluster_worker_running\{worker="w-busy"\} 3/);
  });

  it("routes MCP: a new sandbox is placed on a worker, calls naming it reach that worker", async () => {
    // Only the real worker takes new work (the others above were rows without a process).
    await db.pool.query(`UPDATE workers SET state = 'draining' WHERE id <> 'w-real'`);
    const client = new Client({ name: "routing-test", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${apiUrl}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${ann}` } },
      }),
    );
    try {
      const created = await client.callTool({ name: "create_sandbox", arguments: {} });
      const sandboxId = (created.structuredContent as { sandbox_id: string }).sandbox_id;
      expect(await registry.get(sandboxId)).toMatchObject({ workerId: "w-real", userId: "ann" });
      const ran = await client.callTool({
        name: "exec_command",
        arguments: { sandbox_id: sandboxId, command: "echo routed-$((6*7))" },
      });
      expect(JSON.stringify(ran.structuredContent)).toContain("routed-42");
      await client.callTool({ name: "destroy_sandbox", arguments: { sandbox_id: sandboxId } });
      expect((await registry.get(sandboxId))?.endedAt).toEqual(expect.any(Number));
    } finally {
      await client.close();
    }
    // The API node still checks Host itself (the worker cannot: it sees its own address).
    const forged = await fetch(`${apiUrl}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${ann}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        origin: "http://evil.example",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(forged.status).toBe(403);
  });

  it("holds a user's limits across the cluster before placing a new session", async () => {
    await db.pool.query(
      `INSERT INTO executions (id, user_id, source, language, status, code_sha256, code_bytes,
         limits, created_at, worker_id) VALUES ('ex_e', 'erin', 'api', 'python', 'running',
         'x', 1, '{}', 1, 'w-busy')`,
    );
    for (let i = 0; i < 4; i++)
      await registry.register({
        id: `sess_01J0000000000000000000ERI${i}`,
        userId: "erin",
        keyId: null,
        workerId: "w-fake",
        language: null,
        createdAt: Date.now(),
      });
    const r = await call("POST", "/v1/sessions", erin, "{}", "application/json");
    expect(r.status).toBe(429);
    expect(await r.json()).toMatchObject({
      error: { code: "QUOTA_EXCEEDED", message: expect.stringMatching(/maxSandboxesPerUser 5/) },
    });
  });
});
