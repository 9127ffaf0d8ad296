/**
 * Attacks on Warden through web previews: a session runs a hostile raw-socket
 * "web server" (preview-hostile.ts) that answers broken, malicious, endless
 * and flooding HTTP, on the plain and the upgrade path. Each answer must end
 * as a clean error or a filtered pass-through; no forbidden header reaches the
 * client, no credential reaches the sandbox, and Warden stays up, serves
 * another session's preview and keeps its memory.
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, rssBytes, startServer, type TestServer } from "../helpers/server.js";
import {
  FORBIDDEN_RESPONSE_HEADERS,
  expectNoForbidden,
  headNames,
  hostileSession,
  ownWorld,
  rawGet,
  rawUpgrade,
  sessionsKey,
  type RawAnswer,
} from "./preview-hostile.js";

const PORT = 8000;
let server: TestServer;
let ann: string;
let bob: string;
let hostile: string;
let neighbour: string;

const auth = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
const get = (mode: string, headers: Record<string, string> = {}): Promise<RawAnswer> =>
  rawGet(server, `${hostile}/ports/${PORT}/m/${mode}`, { ...auth(ann), ...headers });

/** None of the planted headers; Warden's own framing policy (DENY) may be there. */
/** Warden answers its health check and another user's preview. */
async function expectAlive(): Promise<void> {
  expect(server.process.exitCode).toBeNull();
  expect((await server.request("GET", "/healthz", { token: null })).status).toBe(200);
  const page = await server.request("GET", `${neighbour}/ports/8001/index.html`, { token: bob });
  expect(page.status).toBe(200);
  expect(await page.text()).toContain("neighbour page");
}

beforeAll(async () => {
  server = await startServer({ env: ownWorld("preview-attacks", 781_000) });
  ann = await sessionsKey(server, "ann");
  bob = await sessionsKey(server, "bob");
  hostile = await hostileSession(server, ann, PORT);
  const created = await server.request("POST", "/v1/sessions", { token: bob, body: {} });
  neighbour = `/v1/sessions/${((await created.json()) as { id: string }).id}`;
  await server.request("PUT", `${neighbour}/files/site/index.html`, {
    token: bob,
    raw: "<p>neighbour page</p>",
    headers: { "content-type": "application/octet-stream" },
  });
  await server.request("POST", `${neighbour}/commands`, {
    token: bob,
    body: {
      command: "python3 -m http.server 8001 --bind 127.0.0.1",
      cwd: "site",
      background: true,
    },
  });
  await eventually(async () => {
    const r = await server.request("GET", `${neighbour}/ports/8001/`, { token: bob });
    return r.status === 200;
  }, 30_000);
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

describe("preview answers that are not HTTP, or not valid HTTP", () => {
  const invalid = [
    "status-999",
    "status-600",
    "status-099",
    "status-101",
    "garbage",
    "empty",
    "header-nul",
    "header-cr",
    "header-name",
    "header-ctl",
    "dup-length",
    "length-chunked",
    "bad-length",
    "huge-header",
    "many-headers",
  ];
  it.each(invalid)("%s → 502, Warden up", async (mode) => {
    const r = await get(mode);
    expect(r.status).toBe(502);
    const code = mode === "empty" ? "UPSTREAM_UNAVAILABLE" : "UPSTREAM_INVALID";
    expect(JSON.parse(r.body)).toMatchObject({ error: { code } });
    expectNoForbidden(r.headers);
    await expectAlive();
  });

  it.each(["header-lf", "obs-fold"])("%s → 502 or a filtered answer", async (mode) => {
    const r = await get(mode);
    expect([200, 502]).toContain(r.status);
    expectNoForbidden(r.headers);
    await expectAlive();
  });

  it.each(["bad-chunked", "abrupt"])(
    "%s: the body ends as an error, never cleanly",
    async (mode) => {
      const r = await get(mode);
      if (r.status !== 502) {
        expect(r.status).toBe(200);
        expect(r.ended).not.toBe("end");
      }
      await expectAlive();
    },
  );

  it("duplicate Content-Type: one of them, not both", async () => {
    const r = await get("dup-type");
    expect(r.status).toBe(200);
    expect(typeof r.headers["content-type"]).toBe("string");
    await expectAlive();
  });

  it("answers that never finish their head end in 504 (time), not a held request", async () => {
    const answers = await Promise.all(["no-end", "drip", "hints-flood"].map((m) => get(m)));
    for (const r of answers) {
      expect(r.status).toBe(504);
      expect(JSON.parse(r.body)).toMatchObject({
        error: { code: "UPSTREAM_TIMEOUT" },
      });
      expectNoForbidden(r.headers);
    }
    await expectAlive();
  }, 120_000);
});

describe("what a preview may say on Warden's origin", () => {
  it("drops cookies, challenges, framing, CORS, CSP, HSTS, preloads, refresh", async () => {
    const r = await get("forbidden");
    expect(r.status).toBe(200);
    expect(r.body).toBe("hi");
    expectNoForbidden(r.headers);
    expect(r.headers["content-type"]).toBe("text/plain");
    expect(r.headers["cache-control"]).toBe("no-store");
    expect(r.headers["etag"]).toBe('"v1"');
    expect(r.headers["content-security-policy"]).toMatch(/^sandbox /);
    const challenge = await get("challenge");
    expect(challenge.status).toBe(401);
    expect(challenge.body).toBe("nope");
    expectNoForbidden(challenge.headers);
  });

  it("keeps redirects inside the preview", async () => {
    const prefix = `${hostile}/ports/${PORT}`;
    const cases: [string, string | undefined][] = [
      ["ext", undefined],
      ["scheme-rel", undefined],
      ["backslash", undefined],
      ["js", undefined],
      ["other-port", undefined],
      ["root", `${prefix}/next?a=1`],
      ["relative", `${prefix}/m/next`],
      ["up", `${prefix}/v1/keys`],
      ["loopback", `${prefix}/back`],
      ["prefixed", `${prefix}/already`],
    ];
    for (const [name, expected] of cases) {
      const r = await get(`loc-${name}`);
      expect(r.status, name).toBe(302);
      expect(r.headers.location, name).toBe(expected);
    }
  });

  it("sends no credential or forwarding header into the sandbox", async () => {
    const secrets = {
      cookie: "warden_ui=SECRET1",
      "proxy-authorization": "Basic SECRET2",
      "x-api-key": "SECRET3",
      "x-auth-token": "SECRET4",
      "x-forwarded-for": "10.9.9.9",
      forwarded: "for=10.9.9.9",
      "x-real-ip": "10.9.9.9",
      "x-warden-user": "admin",
      referer: "http://127.0.0.1/admin?token=SECRET5",
      accept: "text/x-check",
    };
    const r = await get("echo-request", secrets);
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/^GET \/m\/echo-request HTTP\/1\.1\r\n/);
    expect(r.body).not.toMatch(/SECRET|10\.9\.9\.9|x-warden|Bearer/i);
    expect(r.body).toMatch(/\r\naccept: text\/x-check\r\n/i);
    // A body goes in, announced by its own length.
    const posted = await server.request("POST", `${hostile}/ports/${PORT}/m/echo-request`, {
      token: ann,
      raw: '{"a":1}',
      headers: { "content-type": "application/json", cookie: "warden_ui=SECRET1" },
    });
    expect(posted.status).toBe(200);
    const postedHead = await posted.text();
    expect(postedHead).toMatch(/\r\ncontent-length: 7\r\n/i);
    expect(postedHead).not.toMatch(/SECRET|Bearer/i);
    const up = await rawUpgrade(server, `${hostile}/ports/${PORT}/u/echo-request`, {
      ...auth(ann),
      ...secrets,
    });
    expect(up.status).toBe(101);
    const inside = await new Promise<string>((resolve) => {
      let seen = up.rest.toString("latin1");
      up.socket.on("data", (d: Buffer) => (seen += d.toString("latin1")));
      up.socket.on("close", () => resolve(seen));
      up.socket.resume();
    });
    expect(inside).toMatch(/^GET \/u\/echo-request HTTP\/1\.1\r\n/);
    expect(inside).not.toMatch(/SECRET|10\.9\.9\.9|x-warden|Bearer/i);
    expect(inside).toMatch(/\r\nupgrade: echo\r\n/i);
  });
});

describe("upgrades answered by a hostile server", () => {
  const upgrade = (mode: string) =>
    rawUpgrade(server, `${hostile}/ports/${PORT}/u/${mode}`, auth(ann));

  it.each(["junk", "no-upgrade", "other-protocol", "huge-header"])(
    "%s → 502, Warden up",
    async (mode) => {
      const r = await upgrade(mode);
      expect(r.status).toBe(502);
      expect(r.head).toMatch(/\r\ncontent-type: application\/json/i);
      r.socket.destroy();
      await expectAlive();
    },
  );

  it("a head that never ends → 504", async () => {
    const r = await upgrade("no-end");
    expect(r.status).toBe(504);
    r.socket.destroy();
    await expectAlive();
  }, 90_000);

  it("a 101 passes only the upgrade's own headers, and then carries bytes", async () => {
    const r = await upgrade("cookie");
    expect(r.status).toBe(101);
    const names = headNames(r.head);
    for (const name of FORBIDDEN_RESPONSE_HEADERS) expect(names, name).not.toContain(name);
    expect(names).not.toContain("content-security-policy");
    expect(r.head).toMatch(/\r\nupgrade: echo/i);
    const echoed = await new Promise<string>((resolve) => {
      r.socket.once("data", (d: Buffer) => resolve(d.toString()));
      r.socket.resume();
      r.socket.write("ping");
    });
    expect(echoed).toBe("ping");
    r.socket.destroy();
  });

  it("a refusal of the upgrade passes filtered, with its body", async () => {
    const r = await upgrade("challenge");
    expect(r.status).toBe(401);
    const names = headNames(r.head);
    for (const name of FORBIDDEN_RESPONSE_HEADERS) expect(names, name).not.toContain(name);
    expect(r.head).toMatch(/\r\ncontent-security-policy: sandbox/i);
    const body = await new Promise<string>((resolve) => {
      let seen = r.rest.toString();
      r.socket.on("data", (d: Buffer) => (seen += d.toString()));
      r.socket.on("close", () => resolve(seen));
      r.socket.resume();
    });
    expect(body).toBe("nope!");
    await expectAlive();
  });
});

describe("floods into a client that does not read", () => {
  it("keep Warden's memory bounded, on the plain and the upgrade path", async () => {
    const pid = server.process.pid!;
    const before = rssBytes(pid);
    const upgraded = await rawUpgrade(server, `${hostile}/ports/${PORT}/u/flood`, auth(ann));
    expect(upgraded.status).toBe(101);
    // The plain flood: a response whose body the client never reads.
    const { hostname, port } = new URL(server.url);
    const plain = await new Promise<Socket>((resolve) => {
      const s = connect(Number(port), hostname);
      s.on("error", () => undefined);
      s.on("connect", () => {
        s.write(
          `GET ${hostile}/ports/${PORT}/m/flood HTTP/1.1\r\nHost: x\r\n` +
            `Authorization: Bearer ${ann}\r\n\r\n`,
        );
        s.once("data", () => {
          s.pause();
          resolve(s);
        });
      });
    });
    let peak = before;
    for (let i = 0; i < 16; i++) {
      await new Promise((r) => setTimeout(r, 500));
      peak = Math.max(peak, rssBytes(pid));
    }
    // Both still flow once read: the floods were held back, not dropped.
    const more = await new Promise<number>((resolve) => {
      let n = 0;
      upgraded.socket.on("data", (d: Buffer) => {
        n += d.length;
        if (n > 1_000_000) resolve(n);
      });
      upgraded.socket.resume();
    });
    expect(more).toBeGreaterThan(1_000_000);
    upgraded.socket.destroy();
    plain.destroy();
    console.error(
      `preview floods: Warden RSS ${before >> 20} MiB, peak +${(peak - before) >> 20} MiB`,
    );
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
    await expectAlive();
  }, 60_000);
});
