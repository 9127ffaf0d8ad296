/**
 * Hostile callers of E2B's control API and sandbox plane: oversized
 * metadata and variables, a sandbox token replayed against another sandbox,
 * one user reaching for another's. Each is refused and Warden goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey } from "../helpers/server.js";
import { lastJson, runScript, startE2bWarden, type E2bWarden } from "./sdk.js";

let w: E2bWarden;
let other: string;

beforeAll(async () => {
  w = await startE2bWarden({ maxSessionsPerUser: 4 });
  other = await createKey(w.server, "e2b-other", "sessions", "e2b-other");
}, 60_000);

afterAll(async () => {
  await w?.server.stop();
});

const api = (path: string, key: string, init: RequestInit = {}) =>
  fetch(`${w.server.url}/e2b${path}`, {
    ...init,
    headers: { "x-api-key": key, "content-type": "application/json", ...init.headers },
  });

/** Creates a sandbox through the API; returns its id and token. */
async function create(key: string): Promise<{ sandboxID: string; envdAccessToken: string }> {
  const res = await api("/v2/sandboxes", key, { method: "POST", body: "{}" });
  expect(res.status).toBe(201);
  return (await res.json()) as { sandboxID: string; envdAccessToken: string };
}

async function stillUp(): Promise<void> {
  expect((await fetch(`${w.server.url}/healthz`)).status).toBe(200);
}

describe("E2B control API under attack", () => {
  it("refuses oversized metadata and envVars by field and limit, starting nothing", async () => {
    const r = await runScript(
      w,
      `
      import { Sandbox } from "e2b";
      const out = {};
      const many = (n, v) => Object.fromEntries(Array.from({ length: n }, (_, i) => ["K" + i, v]));
      const tries = {
        metaCount: { metadata: many(1000, "x") },
        metaValue: { metadata: { k: "v".repeat(100_000) } },
        envCount: { envs: many(500, "x") },
        envTotal: { envs: many(60, "v".repeat(8000)) },
        envReserved: { envs: { WARDEN_PYTHON: "/bin/sh" } },
      };
      for (const [name, opts] of Object.entries(tries)) {
        try { await Sandbox.create({ timeoutMs: 30_000, ...opts }); out[name] = "created"; }
        catch (e) { out[name] = e.constructor.name + " " + e.message; }
      }
      console.log(JSON.stringify(out));
      `,
    );
    const out = lastJson<Record<string, string>>(r);
    expect(out.metaCount).toMatch(/^SandboxError 400: metadata: at most 32 entries/);
    expect(out.metaValue).toMatch(/^SandboxError 400: metadata\.k: a value of at most 1024 chars/);
    expect(out.envCount).toMatch(/^SandboxError 400: envVars: at most 64 variables/);
    expect(out.envTotal).toMatch(/^SandboxError 400: envVars: at most 65536 bytes in all/);
    expect(out.envReserved).toMatch(/^SandboxError 400: envVars: names starting WARDEN_/);
    const mine = await api("/v2/sandboxes", w.apiKey);
    expect(await mine.json()).toEqual([]);
    await stillUp();
  });

  it("does not let one sandbox's token reach another, nor tell which exist", async () => {
    const a = await create(w.apiKey);
    const b = await create(other);
    const health = (id: string, token: string) =>
      fetch(`${w.server.url}/e2b/health`, {
        headers: { "e2b-sandbox-id": id, "x-access-token": token, "e2b-sandbox-port": "49983" },
      });
    expect((await health(a.sandboxID, a.envdAccessToken)).status).toBe(204);
    // A's token, B's id (another user's sandbox): refused as if nothing were there.
    const cross = await health(b.sandboxID, a.envdAccessToken);
    const absent = await health("01j0000000000000000000000a", a.envdAccessToken);
    expect(cross.status).toBe(401);
    expect(absent.status).toBe(401);
    expect(await cross.json()).toEqual(await absent.json());
    // The traffic header carries the same check.
    const viaTraffic = await fetch(`${w.server.url}/e2b/health`, {
      headers: { "e2b-sandbox-id": b.sandboxID, "e2b-traffic-access-token": a.envdAccessToken },
    });
    expect(viaTraffic.status).toBe(401);

    // The control API: another user's sandbox is not found, whatever the call.
    for (const [method, path] of [
      ["GET", `/sandboxes/${b.sandboxID}`],
      ["POST", `/v2/sandboxes/${b.sandboxID}/connect`],
      ["POST", `/sandboxes/${b.sandboxID}/pause`],
      ["GET", `/sandboxes/${b.sandboxID}/metrics`],
      ["DELETE", `/sandboxes/${b.sandboxID}`],
    ] as const) {
      const res = await api(path, w.apiKey, {
        method,
        ...(method === "POST" ? { body: "{}" } : {}),
      });
      expect([method, path, res.status]).toEqual([method, path, 404]);
    }
    const timeout = await api(`/sandboxes/${b.sandboxID}/timeout`, w.apiKey, {
      method: "POST",
      body: '{"timeout":1}',
    });
    expect(timeout.status).toBe(404);
    // List shows each user only their own, the admin key included.
    const listA = (await (await api("/v2/sandboxes", w.apiKey)).json()) as { sandboxID: string }[];
    expect(listA.map((s) => s.sandboxID)).toEqual([a.sandboxID]);
    const listAdmin = (await (await api("/v2/sandboxes", w.server.adminToken)).json()) as unknown[];
    expect(listAdmin).toEqual([]);
    // B was left running, untouched.
    const infoB = (await (await api(`/sandboxes/${b.sandboxID}`, other)).json()) as {
      state: string;
    };
    expect(infoB.state).toBe("running");
    await api(`/sandboxes/${a.sandboxID}`, w.apiKey, { method: "DELETE" });
    await api(`/sandboxes/${b.sandboxID}`, other, { method: "DELETE" });
    await stillUp();
  });

  it("refuses malformed ids, queries and bodies in E2B's shape", async () => {
    for (const path of [
      "/sandboxes/..%2F..%2Fetc",
      `/sandboxes/${"a".repeat(200)}`,
      "/v2/sandboxes?state=exploded",
      // Past the pair limit, within the server's URL limit (longer URLs: 414 before routing).
      `/v2/sandboxes?metadata=${encodeURIComponent("a=b&".repeat(300))}`,
      "/v2/sandboxes?nextToken=-1",
    ]) {
      const res = await api(path, w.apiKey);
      const body = (await res.json()) as { code: number; message: string };
      expect([path, res.status >= 400 && res.status < 500]).toEqual([path, true]);
      expect(body.code).toBe(res.status);
      expect(body.message).not.toMatch(/\n\s+at /);
    }
    const deep = await api("/v2/sandboxes", w.apiKey, {
      method: "POST",
      body: `{"metadata":${"[".repeat(5000)}${"]".repeat(5000)}}`,
    });
    expect(deep.status).toBe(400);
    expect(await deep.json()).toMatchObject({ code: 400 });
    await stillUp();
  });
});
