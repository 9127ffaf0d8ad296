/**
 * Attacks on an API node's forwarding: request targets that the API node
 * routes as a call on the caller's own session, but that URL parsing turns
 * into another host (absolute-form, `http://victim/...`) or another path
 * (`..`, `%2e%2e`, backslashes). Before the fix the API node signed and sent
 * them: a full-read SSRF from the API node to any address, and calls the
 * worker routed as routes the API node never checked (a session create that
 * skips the cluster-wide per-user count). The worker here is a plain HTTP
 * server that records what reaches it; a second one plays the victim.
 */
import { execFileSync } from "node:child_process";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { clusterRouting } from "../../src/cluster/forward.js";
import { verifyRequest } from "../../src/cluster/internal-auth.js";
import { Placement } from "../../src/cluster/placement.js";
import { WorkerDirectory } from "../../src/cluster/worker-directory.js";
import { buildServer } from "../../src/http/server.js";
import type { SessionManager } from "../../src/sessions/manager.js";
import { openWarden, type EmbeddedWarden } from "../../src/warden.js";
import { rawConnect } from "../helpers/raw-http.js";
import { freshDatabase, putWorker, type TestDatabase } from "./routing-fixture.js";

const SECRET = "forward-attacks-secret-0123456789abcdef";
const SESSION = "sess_01J00000000000000000000ATK";
const BOB_SESSION = "sess_01J00000000000000000000BOB";
const TLS_SESSION = "sess_01J00000000000000000000TLS";

interface Seen {
  url: string;
  method: string;
  headers: IncomingHttpHeaders;
}

let db: TestDatabase;
let warden: EmbeddedWarden;
let api: Awaited<ReturnType<typeof buildServer>>;
let apiUrl: string;
let ann: string;
let bob: string;
let tlsWorker: Server;
let tlsSeen: Seen[] = [];
let worker: Server;
let victim: Server;
let workerSeen: Seen[] = [];
let victimSeen: Seen[] = [];

/** Streams held open by the recording worker (a session's /watch), ended after the test. */
const held: ServerResponse[] = [];

const answer = (into: () => Seen[]) => (req: IncomingMessage, res: ServerResponse) => {
  into().push({ url: req.url ?? "", method: req.method ?? "", headers: req.headers });
  if (req.url?.endsWith("/watch")) {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(": open\n\n");
    held.push(res);
    return;
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ reached: true }));
};
const recorder = (into: () => Seen[]) => createServer(answer(into));

const listen = async (s: Server): Promise<number> => {
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as AddressInfo).port;
};

/** Sends one raw request (no client normalises its target) and returns the status line's code. */
async function raw(
  target: string,
  method = "GET",
  body = "",
  extra = "",
  token = ann,
): Promise<number> {
  const client = await rawConnect(apiUrl);
  client.write(
    `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      `${extra}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
  // The status line is all this needs; waiting for the close would wait on keep-alive timers.
  for (let i = 0; i < 200 && !client.isClosed() && !/\r\n\r\n/.test(client.received()); i++)
    await new Promise((r) => setTimeout(r, 25));
  client.close();
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(client.received())?.[1] ?? 0);
}

beforeAll(async () => {
  db = await freshDatabase();
  warden = await openWarden({
    env: {
      WARDEN_DATA_DIR: mkdtempSync(join(tmpdir(), "warden-fwd-attacks-")),
      WARDEN_RUN_DIR: "/run/warden-fwd-attacks",
      WARDEN_CGROUP_PARENT: "warden-fwd-attacks",
      WARDEN_UID_BASE: "915000",
      WARDEN_UID_COUNT: "100",
      WARDEN_POOL: "false",
    },
    logger: silentLogger,
  });
  ann = (await warden.store.keys.create({ name: "ann", scopes: ["sessions"], userId: "ann" }))
    .token;
  bob = (await warden.store.keys.create({ name: "bob", scopes: ["sessions"], userId: "bob" }))
    .token;
  // A worker on https with a certificate nobody issued: the API node must not talk to it.
  const dir = mkdtempSync(join(tmpdir(), "warden-fwd-tls-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
    ].concat(["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")]),
    { stdio: "ignore" },
  );
  tlsWorker = createTlsServer(
    { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) },
    answer(() => tlsSeen),
  );
  const tlsPort = await listen(tlsWorker);
  await putWorker(db.pool, { id: "w-tls", url: `https://127.0.0.1:${tlsPort}` });
  worker = recorder(() => workerSeen);
  victim = recorder(() => victimSeen);
  const workerPort = await listen(worker);
  await listen(victim);
  await putWorker(db.pool, { id: "w-rec", url: `http://127.0.0.1:${workerPort}` });
  await db.store.sessions.register({
    id: SESSION,
    userId: "ann",
    keyId: null,
    workerId: "w-rec",
    language: null,
    createdAt: Date.now(),
  });
  for (const [id, userId, workerId] of [
    [BOB_SESSION, "bob", "w-rec"],
    [TLS_SESSION, "ann", "w-tls"],
  ] as const)
    await db.store.sessions.register({
      id,
      userId,
      keyId: null,
      workerId,
      language: null,
      createdAt: Date.now(),
    });
  const workers = new WorkerDirectory(db.pool, 5000);
  // ann may hold one session: she holds it, so a create must be refused at the API node.
  const placement = new Placement(workers, { maxSandboxesPerUser: 1, maxSessionsPerUser: 1 }, (u) =>
    db.store.sessions.liveCountOf(u),
  );
  const routing = clusterRouting({
    secret: SECRET,
    workers,
    registry: db.store.sessions,
    placement,
    maxBodyBytes: 1024 * 1024,
  });
  const deps = { ...warden, config: warden.config, logger: silentLogger, service: warden };
  api = await buildServer({
    ...deps,
    keys: warden.store.keys,
    sessions: {} as SessionManager,
    routing,
  });
  apiUrl = await api.listen({ host: "127.0.0.1", port: 0 });
}, 120_000);

afterAll(async () => {
  for (const res of held) res.end();
  await api?.close();
  worker?.close();
  tlsWorker?.close();
  victim?.close();
  await warden?.shutdown(1000);
  await db?.drop();
});

describe("an API node's forwarding under attack", () => {
  // The worker row's heartbeat stays fresh: a stale one would answer 410 before any forwarding.
  beforeEach(async () => {
    const port = (worker.address() as AddressInfo).port;
    await putWorker(db.pool, { id: "w-rec", url: `http://127.0.0.1:${port}` });
    const tlsPort = (tlsWorker.address() as AddressInfo).port;
    await putWorker(db.pool, { id: "w-tls", url: `https://127.0.0.1:${tlsPort}` });
  });

  it("forwards an ordinary call on the caller's session, signed for exactly that target", async () => {
    workerSeen = [];
    expect(await raw(`/v1/sessions/${SESSION}/files/a.txt?x=1`)).toBe(200);
    const [seen] = workerSeen;
    expect(seen?.url).toBe(`/v1/sessions/${SESSION}/files/a.txt?x=1`);
    expect(verifyRequest(SECRET, seen!.headers, "GET", seen!.url).userId).toBe("ann");
  });

  it("does not send an absolute-form target to the host it names (SSRF)", async () => {
    const victimPort = (victim.address() as AddressInfo).port;
    victimSeen = [];
    workerSeen = [];
    const targets = [
      `http://127.0.0.1:${victimPort}/v1/sessions/${SESSION}`,
      `http://127.0.0.1:${victimPort}/v1/sessions/${SESSION}/files/../../../latest/meta-data`,
    ];
    for (const t of targets) expect(await raw(t)).toBe(400);
    expect(victimSeen).toEqual([]);
    expect(workerSeen).toEqual([]);
  });

  it("does not turn dot segments into another route on the worker", async () => {
    workerSeen = [];
    const targets = [
      // A session create, past the API node's cluster-wide count (ann is at her limit).
      ["POST", `/v1/sessions/${SESSION}/files/../../../sessions`],
      ["POST", `/v1/sessions/${SESSION}/files/%2e%2e/%2E%2e/%2e./sessions`],
      ["POST", `/v1/sessions/${SESSION}/files/..\\..\\..\\sessions`],
      ["GET", `/v1/sessions/${SESSION}/files/./a/../../commands`],
    ] as const;
    for (const [method, target] of targets) expect(await raw(target, method, "{}")).toBe(400);
    expect(workerSeen.map((s) => `${s.method} ${s.url}`)).toEqual([]);
    // The honest create is refused where the count is kept.
    expect(await raw("/v1/sessions", "POST", "{}")).toBe(429);
  });

  it("passes no client address claims, cookies or body framing to a worker", async () => {
    const claims =
      "Cookie: sid=secret\r\nX-Forwarded-For: 10.9.9.9\r\nForwarded: for=10.9.9.9\r\n" +
      "X-Real-IP: 10.9.9.9\r\nX-Forwarded-Host: evil.example\r\n";
    workerSeen = [];
    expect(await raw(`/v1/sessions/${SESSION}/files/a.txt`, "GET", "", claims)).toBe(200);
    // An upgrade (previews' WebSocket) goes through the relay: the same rule.
    const client = await rawConnect(apiUrl);
    client.write(
      `GET /v1/sessions/${SESSION}/ports/9100/ws HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Authorization: Bearer ${ann}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `${claims}Content-Length: 0\r\n\r\n`,
    );
    for (let i = 0; i < 200 && workerSeen.length < 2; i++)
      await new Promise((r) => setTimeout(r, 25));
    client.close();
    expect(workerSeen).toHaveLength(2);
    for (const seen of workerSeen) {
      for (const name of [
        "authorization",
        "cookie",
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "x-forwarded-host",
      ])
        expect(seen.headers[name], `${name} on ${seen.url}`).toBeUndefined();
      expect(verifyRequest(SECRET, seen.headers, seen.method, seen.url).ip).toBe("127.0.0.1");
    }
    expect(workerSeen[1]?.headers["content-length"]).toBeUndefined();
    expect(workerSeen[1]?.headers.upgrade).toBe("websocket");
  });

  it("does not talk to a worker whose TLS certificate does not verify", async () => {
    tlsSeen = [];
    const status = await raw(`/v1/sessions/${TLS_SESSION}/files/a.txt`);
    expect(status).toBe(502);
    expect(tlsSeen).toEqual([]);
  });

  it("lets no user's long-lived streams hold every connection to a worker", async () => {
    // ann opens more streams (/watch, SSE) to her session than reply-from's 128 connections
    // per worker: with three keys (each under maxOpenRequestsPerKey, 64) from two addresses
    // (each under maxConnectionsPerIp, 128). Busy legitimate users reach the same number.
    const keys = [ann];
    for (const name of ["ann2", "ann3"])
      keys.push(
        (await warden.store.keys.create({ name, scopes: ["sessions"], userId: "ann" })).token,
      );
    const streams = [];
    for (let i = 0; i < 140; i++) {
      // Under the key's burst limit: 30 a second.
      if (i % 30 === 29) await new Promise((r) => setTimeout(r, 1100));
      const c = await rawConnect(apiUrl, i % 2 === 0 ? "127.0.0.1" : "127.0.0.2");
      c.write(
        `GET /v1/sessions/${SESSION}/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          `Authorization: Bearer ${keys[i % 3]}\r\n\r\n`,
      );
      streams.push(c);
    }
    // Up to 30 s: on a busy machine the worker takes the streams slowly.
    for (let i = 0; i < 1200 && held.length < 140; i++) await new Promise((r) => setTimeout(r, 25));
    expect(held.length).toBe(140);
    // The stand-in worker sends no heartbeats: on a slow machine the wait above outlives the
    // freshness of the row beforeEach wrote, and a stale worker answers 410 before forwarding.
    const port = (worker.address() as AddressInfo).port;
    await putWorker(db.pool, { id: "w-rec", url: `http://127.0.0.1:${port}` });
    // bob's call to his own session on the same worker is answered at once, not queued.
    const answered = await Promise.race([
      raw(`/v1/sessions/${BOB_SESSION}/files/b.txt`, "GET", "", "", bob),
      new Promise<number>((r) => setTimeout(() => r(-1), 5000)),
    ]);
    expect(answered).toBe(200);
    for (const c of streams) c.close();
  });

  it("stays up and answers after all of it", async () => {
    const health = await fetch(`${apiUrl}/healthz`);
    expect(health.status).toBe(200);
  });
});
