/** Bad input gets a clear 4xx naming the field and limit, and nothing is half-stored. */
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let userKey: string;

beforeAll(async () => {
  server = await startServer();
  userKey = await createKey(server, "carol-app", "execute", "carol");
});
afterAll(async () => {
  await server?.stop();
});

/**
 * Announces a body of `bytes` bytes and sends only its first 64 KiB: the
 * server must refuse on Content-Length alone. (Sending it all races the
 * server's early answer: a reset can discard the 413 before it is read.)
 */
function postHuge(bytes: number, token: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}/v1/executions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        "content-length": bytes,
      },
    });
    req.on("response", (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => {
        resolve(new Response(body, { status: res.statusCode }));
        req.destroy();
      });
    });
    req.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE" && error.code !== "ECONNRESET") reject(error);
    });
    req.write(Buffer.alloc(64 * 1024, "x"));
  });
}

async function expectError(
  res: Response,
  status: number,
  code: string,
  message?: RegExp,
): Promise<void> {
  expect(res.status).toBe(status);
  const body = (await res.json()) as {
    error: { code: string; message: string; requestId: string };
  };
  expect(body.error.code).toBe(code);
  expect(body.error.requestId).toMatch(/^req_/);
  if (message) expect(body.error.message).toMatch(message);
  // Never a stack trace, a host path or SQL.
  const text = JSON.stringify(body);
  expect(text, text).not.toMatch(/ at \S+:\d+:\d+|\/work\/|\/root\/|node_modules|SELECT |INSERT /);
}

describe("bad input", () => {
  it("is refused with a clear error and stores nothing", async () => {
    const before = server.count("executions");
    const post = (body: unknown, token: string | null = userKey) =>
      server.request("POST", "/v1/executions", { token, body });
    await expectError(
      await server.request("POST", "/v1/executions", {
        token: userKey,
        raw: "{not json",
        headers: { "content-type": "application/json" },
      }),
      400,
      "INVALID_REQUEST",
      /JSON/,
    );
    await expectError(
      await postHuge(10 * 1024 * 1024, userKey),
      413,
      "INVALID_REQUEST",
      /body: larger than the limit/,
    );
    await expectError(
      await post({ language: "cobol", code: "x" }),
      400,
      "UNSUPPORTED_LANGUAGE",
      /cobol/,
    );
    await expectError(
      await post({ language: "python", code: "x", timeout: 10_000 }),
      400,
      "INVALID_REQUEST",
      /timeout: 10000 exceeds the maximum 900 \(maxTimeout\)/,
    );
    await expectError(
      await post({ language: "python", code: "x", limits: { memoryMb: -1 } }),
      400,
      "INVALID_REQUEST",
      /limits\.memoryMb/,
    );
    await expectError(
      await post({ language: "python", code: "x", limits: { memoryMb: 100_000 } }),
      400,
      "INVALID_REQUEST",
      /maxMemoryMB/,
    );
    await expectError(
      await post({ language: "python", files: [{ path: "../../etc/passwd", content: "x" }] }),
      400,
      "INVALID_REQUEST",
      /files\[0\]\.path: must not contain '\.\.'/,
    );
    await expectError(
      await post({ language: "python", files: [{ path: "/etc/passwd", content: "x" }] }),
      400,
      "INVALID_REQUEST",
      /relative/,
    );
    await expectError(
      await post({ language: "python", files: [{ path: "a\u0000b", content: "x" }] }),
      400,
      "INVALID_REQUEST",
      /NUL/,
    );
    const many = Array.from({ length: 10_000 }, (_, i) => ({ path: `f${i}.py`, content: "" }));
    await expectError(
      await post({ language: "python", files: many }),
      400,
      "INVALID_REQUEST",
      /files: at most 100 files \(maxFiles\)/,
    );
    await expectError(
      await post({ language: "python", code: "x", bogus: 1 }),
      400,
      "INVALID_REQUEST",
      /bogus/,
    );
    await expectError(
      await post({ language: "python", code: "x", network: { allow: ["pypi.org"] } }),
      403,
      "PERMISSION_DENIED",
      /network/,
    );
    await expectError(
      await post({ language: "python", code: "x" }, null),
      401,
      "UNAUTHORIZED",
      /missing API key/,
    );
    await expectError(
      await post({ language: "python", code: "x" }, "wdn_wrong"),
      401,
      "UNAUTHORIZED",
      /invalid/,
    );
    await expectError(
      await server.request("GET", "/api/sandbox/metrics", { token: userKey }),
      403,
      "PERMISSION_DENIED",
      /admin/,
    );
    await expectError(
      await server.request("POST", "/api/sandbox/kill/exec_01M80J0WX4SKM5NWNH8Z07SRJZ", {
        token: userKey,
      }),
      403,
      "PERMISSION_DENIED",
    );
    await expectError(
      await server.request("GET", "/v1/executions/not-an-id", { token: userKey }),
      400,
      "INVALID_REQUEST",
      /id/,
    );
    await expectError(await server.request("GET", "/nope", { token: userKey }), 404, "NOT_FOUND");
    expect(server.count("executions")).toBe(before);
    // Every refusal is in the audit trail.
    expect(server.count("events", "event = 'validation_failed'")).toBeGreaterThanOrEqual(8);
    expect(server.count("events", "event = 'auth_failure'")).toBeGreaterThanOrEqual(2);
    expect(server.count("events", "event = 'forbidden'")).toBeGreaterThanOrEqual(2);
  });

  it("revoked keys stop working at once", async () => {
    const token = await createKey(server, "temp", "execute", "temp");
    expect((await server.request("GET", "/v1/runtimes", { token })).status).toBe(200);
    const list = await (await server.request("GET", "/healthz", { token: null })).json();
    expect(list).toBeTruthy();
    const { execFileSync } = await import("node:child_process");
    const keys = JSON.parse(
      execFileSync(process.execPath, ["bin/warden.js", "keys", "list", "--json"], {
        env: { ...process.env, WARDEN_DATA_DIR: server.dataDir },
      }).toString(),
    ) as { id: string; name: string }[];
    const id = keys.find((k) => k.name === "temp")!.id;
    execFileSync(process.execPath, ["bin/warden.js", "keys", "revoke", id], {
      env: { ...process.env, WARDEN_DATA_DIR: server.dataDir },
    });
    expect((await server.request("GET", "/v1/runtimes", { token })).status).toBe(401);
  });
});
