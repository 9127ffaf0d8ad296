/**
 * Attacks on the dashboard's login, through a real `warden serve`: forged
 * cross-site requests, user keys, the cookie on routes that run code, expired
 * and tampered cookies, a revoked key's session, login brute force, and
 * spreadsheet formulas in an audit export. Each must fail, and Warden answer.
 */
import Database from "better-sqlite3";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csvCell } from "../../src/usage/export.js";
import { createKey, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let userToken: string;
const LOGINS_PER_MINUTE = 30;

interface Login {
  cookie: string;
  csrf: string;
}

async function login(token: string): Promise<Login> {
  const res = await server.request("POST", "/dashboard/login", { token: null, body: { token } });
  expect(res.status).toBe(200);
  const cookie = /^(warden_dashboard=[^;]+)/.exec(res.headers.get("set-cookie") ?? "")![1]!;
  return { cookie, csrf: ((await res.json()) as { csrfToken: string }).csrfToken };
}

/** A request carrying only the dashboard cookie (no bearer key). */
function withCookie(
  s: Login,
  method: string,
  path: string,
  o: { csrf?: string | null; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = { cookie: s.cookie, ...o.headers };
  const csrf = o.csrf === undefined ? s.csrf : o.csrf;
  if (csrf !== null) headers["x-csrf-token"] = csrf;
  return server.request(method, path, { token: null, headers, body: o.body });
}

const keyCount = async () =>
  ((await (await server.request("GET", "/api/sandbox/keys")).json()) as unknown[]).length;

beforeAll(async () => {
  server = await startServer({
    config: { dashboard: { loginAttemptsPerMinute: LOGINS_PER_MINUTE } },
  });
  // A user id a spreadsheet would read as a formula (USER_ID_PATTERN allows - and @).
  userToken = await createKey(server, "plain-user", "execute,sessions", "@evil");
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

describe("dashboard attacks", () => {
  it("refuses a state change with the cookie but without or with a wrong CSRF token, or cross-site", async () => {
    const s = await login(server.adminToken);
    const before = await keyCount();
    const body = { name: "forged", scopes: ["admin"] };
    const attempts = [
      withCookie(s, "POST", "/api/sandbox/keys", { csrf: null, body }),
      withCookie(s, "POST", "/api/sandbox/keys", { csrf: "x".repeat(43), body }),
      withCookie(s, "POST", "/api/sandbox/keys", {
        body,
        headers: { origin: "http://evil.example" },
      }),
      withCookie(s, "POST", "/api/sandbox/keys", {
        body,
        headers: { "sec-fetch-site": "cross-site" },
      }),
      withCookie(s, "DELETE", `/api/sandbox/keys/key_env_admin`, { csrf: null }),
    ];
    for (const res of await Promise.all(attempts)) {
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        "PERMISSION_DENIED",
      );
    }
    expect(await keyCount()).toBe(before);
    // The same request with the token, from this origin, goes through: the refusals were the check.
    const ok = await withCookie(s, "POST", "/api/sandbox/keys", {
      body: { name: "legit", scopes: ["execute"] },
      headers: { origin: server.url },
    });
    expect(ok.status).toBe(201);
    // A cross-site login (login CSRF) is refused too.
    const crossLogin = await server.request("POST", "/dashboard/login", {
      token: null,
      body: { token: server.adminToken },
      headers: { origin: "http://evil.example" },
    });
    expect(crossLogin.status).toBe(403);
    expect(crossLogin.headers.get("set-cookie")).toBeNull();
  });

  it("a user key can neither log in nor reach any dashboard or admin API", async () => {
    const res = await server.request("POST", "/dashboard/login", {
      token: null,
      body: { token: userToken },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("set-cookie")).toBeNull();
    for (const [method, path] of [
      ["GET", "/dashboard/session"],
      ["POST", "/dashboard/logout"],
      ["GET", "/api/sandbox/audit"],
      ["GET", "/api/sandbox/audit?format=csv"],
      ["GET", "/api/sandbox/audit/counts"],
      ["GET", "/api/sandbox/live"],
      ["GET", "/api/sandbox/keys"],
    ] as const) {
      const r = await server.request(method, path, { token: userToken });
      expect(r.status, `${method} ${path}`).toBe(403);
    }
  });

  it("the cookie does not act on routes that run code or read user data", async () => {
    const s = await login(server.adminToken);
    const executions = server.count("executions");
    for (const [method, path, body] of [
      ["POST", "/v1/executions", { language: "python", code: "print(1)" }],
      ["POST", "/v1/sessions", { language: "python" }],
      ["POST", "/api/v2/execute", { language: "python", version: "*", files: [{ content: "1" }] }],
      ["GET", "/v1/executions", undefined],
    ] as const) {
      const r = await withCookie(s, method, path, { body });
      expect(r.status, `${method} ${path}`).toBe(401);
    }
    expect(server.count("executions")).toBe(executions);
    // The cookie still works where it should.
    expect((await withCookie(s, "GET", "/api/sandbox/live")).status).toBe(200);
  });

  it("refuses an expired, a tampered or a logged-out cookie, and one whose key was revoked", async () => {
    const s = await login(server.adminToken);
    expect((await withCookie(s, "GET", "/api/sandbox/live")).status).toBe(200);
    const last = s.cookie.at(-1) === "A" ? "B" : "A";
    const tampered = { ...s, cookie: `${s.cookie.slice(0, -1)}${last}` };
    expect((await withCookie(tampered, "GET", "/api/sandbox/live")).status).toBe(401);
    expect(
      (await withCookie({ ...s, cookie: "warden_dashboard=../../x" }, "GET", "/api/sandbox/live"))
        .status,
    ).toBe(401);

    // Expired: its row says so (waiting out the smallest TTL would take a minute).
    const db = new Database(join(server.dataDir, "warden.db"));
    try {
      db.prepare("UPDATE dashboard_sessions SET expires_at = ?").run(Date.now() - 1000);
    } finally {
      db.close();
    }
    expect((await withCookie(s, "GET", "/api/sandbox/live")).status).toBe(401);

    const fresh = await login(server.adminToken);
    expect((await withCookie(fresh, "POST", "/dashboard/logout")).status).toBe(200);
    expect((await withCookie(fresh, "GET", "/api/sandbox/live")).status).toBe(401);

    const created = (await (
      await server.request("POST", "/api/sandbox/keys", {
        body: { name: "second-admin", scopes: ["admin"] },
      })
    ).json()) as { id: string; token: string };
    const second = await login(created.token);
    expect((await withCookie(second, "GET", "/api/sandbox/live")).status).toBe(200);
    await server.request("DELETE", `/api/sandbox/keys/${created.id}`);
    expect((await withCookie(second, "GET", "/api/sandbox/live")).status).toBe(401);
  });

  it("escapes spreadsheet formulas in the audit CSV export", async () => {
    expect(csvCell('=HYPERLINK("http://x","y")')).toBe(`"'=HYPERLINK(""http://x"",""y"")"`);
    for (const start of ["=", "+", "-", "@", "\t", "\r"])
      expect(unquote(csvCell(`${start}1`))).toBe(`'${start}1`);
    // A refusal audited for user "@evil" (the user key on an admin route).
    await server.request("GET", "/api/sandbox/keys", { token: userToken });
    const res = await server.request("GET", "/api/sandbox/audit?format=csv&userId=@evil");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    const csv = await res.text();
    const rows = csv.trim().split("\r\n").slice(1);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const cells = [...row.matchAll(/(?:^|,)("(?:[^"]|"")*"|[^,"]*)/g)].map((m) => unquote(m[1]!));
      expect(cells).toHaveLength(8);
      expect(cells[4]).toBe("'@evil");
      // No cell starts with a formula character unless escaped.
      for (const cell of cells) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    }
  });

  it("rate-limits login attempts per client", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LOGINS_PER_MINUTE + 5; i++) {
      const r = await server.request("POST", "/dashboard/login", {
        token: null,
        body: { token: `guess-${i}-0123456789` },
      });
      statuses.push(r.status);
      if (r.status === 429) expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(LOGINS_PER_MINUTE);
    // Once limited, even the right key is refused: guessing cannot continue.
    const right = await server.request("POST", "/dashboard/login", {
      token: null,
      body: { token: server.adminToken },
    });
    expect(right.status).toBe(429);
    // And Warden is still up and answering.
    expect((await server.request("GET", "/healthz", { token: null })).status).toBe(200);
  });
});

/** A CSV cell's value: its RFC 4180 quotes removed. */
function unquote(cell: string): string {
  return /^".*"$/s.test(cell) ? cell.slice(1, -1).replaceAll('""', '"') : cell;
}
