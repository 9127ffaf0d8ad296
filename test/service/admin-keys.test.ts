/** POST/GET/DELETE /api/sandbox/keys: admin only, token shown once, revocation at once, audited. */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let userKey: string;

beforeAll(async () => {
  server = await startServer({ config: { network: { allow: ["*.example.org"] } } });
  userKey = await createKey(server, "carol-app", "execute,sessions", "carol");
});
afterAll(async () => {
  await server?.stop();
});

interface KeyView {
  id: string;
  userId: string;
  scopes: string[];
  policy: string | null;
  networkAllow: string[] | null;
  revokedAt: string | null;
  token?: string;
}

describe("admin keys API", () => {
  it("creates a key whose token works, lists keys without secrets, revokes at once", async () => {
    const made = await server.request("POST", "/api/sandbox/keys", {
      body: {
        name: "dave-app",
        userId: "dave",
        scopes: ["execute"],
        policy: "audit",
        networkAllow: ["api.example.org"],
      },
    });
    expect(made.status).toBe(201);
    const key = (await made.json()) as KeyView;
    expect(key).toMatchObject({
      userId: "dave",
      scopes: ["execute"],
      policy: "audit",
      networkAllow: ["api.example.org"],
      revokedAt: null,
    });
    const token = key.token!;
    expect(token).toMatch(/^wdn_/);
    expect((await server.request("GET", "/v1/executions", { token })).status).toBe(200);

    const listed = await server.request("GET", "/api/sandbox/keys");
    const text = await listed.text();
    expect(text).not.toContain(token);
    expect(text).not.toContain(createHash("sha256").update(token).digest("hex"));
    const keys = JSON.parse(text) as KeyView[];
    expect(keys.find((k) => k.id === key.id)).toMatchObject({ userId: "dave" });
    expect(keys.every((k) => k.token === undefined)).toBe(true);

    const revoked = await server.request("DELETE", `/api/sandbox/keys/${key.id}`);
    expect(await revoked.json()).toEqual({ success: true });
    expect((await server.request("GET", "/v1/executions", { token })).status).toBe(401);
    expect((await server.request("DELETE", `/api/sandbox/keys/${key.id}`)).status).toBe(404);

    expect(server.count("events", "event = 'key_created'")).toBe(1);
    expect(server.count("events", "event = 'key_revoked'")).toBe(1);
  });

  it("is for admin keys only", async () => {
    for (const [method, path] of [
      ["GET", "/api/sandbox/keys"],
      ["POST", "/api/sandbox/keys"],
      ["DELETE", "/api/sandbox/keys/key_env_admin"],
    ] as const) {
      const res = await server.request(method, path, {
        token: userKey,
        body: method === "POST" ? { name: "x", scopes: ["admin"] } : undefined,
      });
      expect(res.status, `${method} ${path}`).toBe(403);
    }
    expect(server.count("events", "event LIKE 'key_%'")).toBe(2); // only the first test's
  });

  it("refuses bad options, naming the field", async () => {
    for (const [body, status, field] of [
      [{ name: "x", scopes: ["root"] }, 400, "scopes"],
      [{ name: "x", scopes: [] }, 400, "scopes"],
      [{ name: "x", scopes: ["execute"], userId: "a b" }, 400, "userId"],
      [{ name: "x", scopes: ["execute"], policy: "lax" }, 400, "policy"],
      [{ name: "x", scopes: ["execute"], networkAllow: ["evil.com"] }, 403, "network.allow"],
      [{ name: "x", scopes: ["execute"], token: "chosen" }, 400, ""],
    ] as const) {
      const res = await server.request("POST", "/api/sandbox/keys", { body });
      expect(res.status, JSON.stringify(body)).toBe(status);
      const error = ((await res.json()) as { error: { message: string } }).error;
      expect(error.message).toContain(field);
    }
  });
});
