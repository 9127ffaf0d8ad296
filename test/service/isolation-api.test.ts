/**
 * The isolation tier through the REST API of a real server: an admin makes a
 * key forced to gvisor; that key's runs and sessions go to gVisor whatever
 * they ask, a namespaces request is refused (403 ISOLATION_FORBIDDEN) and
 * nothing runs; other keys choose per request; /v1/runtimes lists the tiers.
 * Where this host has no gVisor tier, a gvisor request is 503, never a quiet
 * namespaces run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let forced: string;
let plain: string;
let tiers: string[] = [];

async function makeKey(body: Record<string, unknown>): Promise<string> {
  const made = await server.request("POST", "/api/sandbox/keys", { body });
  expect(made.status).toBe(201);
  return ((await made.json()) as { token: string }).token;
}

beforeAll(async () => {
  server = await startServer();
  forced = await makeKey({
    name: "tenant",
    scopes: ["execute", "sessions"],
    isolationDefault: "gvisor",
    isolationForced: true,
  });
  plain = await makeKey({ name: "plain", scopes: ["execute"] });
  // The probe runs at start-up: the listing says gvisor once it passed (if it does here).
  await eventually(async () => {
    const runtimes = (await (await server.request("GET", "/v1/runtimes")).json()) as {
      isolation: string[];
    }[];
    tiers = runtimes[0]?.isolation ?? [];
    return tiers.includes("gvisor");
  }, 20_000).catch(() => undefined);
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

const run = (token: string, extra: Record<string, unknown> = {}) =>
  server.request("POST", "/v1/executions", {
    token,
    body: { language: "python", code: "print(6 * 7)", ...extra },
  });

describe("isolation through REST", () => {
  it("a key forced to gvisor: namespaces is refused (403) and nothing runs", async () => {
    const before = server.count("executions");
    const refused = await run(forced, { isolation: "namespaces" });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      "ISOLATION_FORBIDDEN",
    );
    expect(server.count("executions")).toBe(before);
    const session = await server.request("POST", "/v1/sessions", {
      token: forced,
      body: { isolation: "namespaces" },
    });
    expect(session.status).toBe(403);
    expect((await server.request("GET", "/healthz", { token: null })).status).toBe(200);
  });

  it("a key forced to gvisor runs there without asking; elsewhere gvisor is 503, never namespaces", async () => {
    const answer = await run(forced);
    const result = (await answer.json()) as {
      isolation?: string;
      stdout?: string;
      metrics?: { platform?: string };
      error?: { code: string; message: string };
    };
    if (tiers.includes("gvisor")) {
      expect(answer.status).toBe(200);
      expect(result).toMatchObject({ isolation: "gvisor", stdout: "42\n" });
      expect(result.metrics?.platform).toBeTruthy();
    } else {
      expect(answer.status).toBe(503);
      expect(result.error).toMatchObject({ code: "ISOLATION_UNAVAILABLE" });
      expect(result.error?.message).toMatch(/^gVisor tier not available on this host: /);
    }
  });

  it("another key chooses per request, and gets namespaces by default", async () => {
    const ns = (await (await run(plain)).json()) as { isolation: string; stdout: string };
    expect(ns).toMatchObject({ isolation: "namespaces", stdout: "42\n" });
    expect(tiers[0]).toBe("namespaces");
    const bad = await run(plain, { isolation: "vm" });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("isolation");
  });
});
