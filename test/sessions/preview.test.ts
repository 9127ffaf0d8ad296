/**
 * Web previews through `warden serve`: a server inside a session answers at
 * /v1/sessions/:id/ports/:port for its owner only, over HTTP and WebSocket-style
 * upgrades, with no host port and no network for the sandbox.
 */
import { request as httpRequest } from "node:http";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, eventually, startServer, type TestServer } from "../helpers/server.js";
import { ownWorld } from "./preview-hostile.js";

let server: TestServer;
let ann: string;
let bob: string;
let base: string;

/** An upgrade server inside the session that answers 101 and echoes bytes back. */
const ECHO_SERVER = `
const http = require("node:http");
const s = http.createServer((req, res) => {
  res.setHeader("set-cookie", "sid=planted; Path=/");
  res.end("plain " + req.url + " cookie=" + (req.headers.cookie || "none"));
});
s.on("upgrade", (req, socket) => {
  socket.write("HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: echo\\r\\nConnection: Upgrade\\r\\n\\r\\n");
  socket.write("auth=" + (req.headers.authorization ? "yes" : "no") + ";");
  socket.pipe(socket);
});
s.listen(9000, "127.0.0.1");
`;

beforeAll(async () => {
  server = await startServer({ env: ownWorld("preview", 780_000) });
  ann = await createKey(server, "ann-web", "sessions", "ann");
  bob = await createKey(server, "bob-web", "sessions", "bob");
  const created = await server.request("POST", "/v1/sessions", { token: ann, body: {} });
  expect(created.status).toBe(201);
  base = `/v1/sessions/${((await created.json()) as { id: string }).id}`;
  await server.request("PUT", `${base}/files/site/index.html`, {
    token: ann,
    raw: "<h1>hello from the session</h1>",
    headers: { "content-type": "application/octet-stream" },
  });
  await server.request("PUT", `${base}/files/echo.cjs`, {
    token: ann,
    raw: ECHO_SERVER,
    headers: { "content-type": "application/octet-stream" },
  });
  for (const body of [
    { command: "python3 -m http.server 8000 --bind 127.0.0.1", cwd: "site", background: true },
    { command: ["node", "echo.cjs"], background: true },
  ]) {
    const started = await server.request("POST", `${base}/commands`, { token: ann, body });
    expect(started.status).toBe(202);
  }
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

describe("web previews", () => {
  it("drops connections to the relay socket that never present a token", async () => {
    const flood = await server.request("POST", `${base}/commands`, {
      token: ann,
      body: {
        command: [
          "python3",
          "-c",
          `import socket, time
held = []
for i in range(100):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect("/.warden/preview.sock")
        held.append(s)
    except OSError:
        pass
def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        return s.recv(10) == b""
    except OSError:
        return False
# Beyond the cap: dropped at once. Within it: dropped once the hello is overdue.
print(closed_within(held[-1], 1), closed_within(held[0], 10))`,
        ],
        timeout: 30,
      },
    });
    expect(((await flood.json()) as { stdout: string }).stdout).toBe("True True\n");
    // Previews still work: Warden's descriptors were not held.
    await eventually(async () => {
      const r = await server.request("GET", `${base}/ports/8000/index.html`, { token: ann });
      return r.status === 200;
    });
  }, 60_000);

  it("serves python3 -m http.server to the session's owner, and no one else", async () => {
    let page = "";
    await eventually(async () => {
      const r = await server.request("GET", `${base}/ports/8000/index.html`, { token: ann });
      page = await r.text();
      return r.status === 200;
    });
    expect(page).toContain("hello from the session");

    const listing = await server.request("GET", `${base}/ports/8000/`, { token: ann });
    expect(listing.status).toBe(200);
    // The page runs with an opaque origin: it cannot act as Warden's own pages.
    expect(listing.headers.get("content-security-policy")).toMatch(/^sandbox /);
    expect(await listing.text()).toContain("hello from the session");

    const other = await server.request("GET", `${base}/ports/8000/`, { token: bob });
    expect(other.status).toBe(404);
    const anonymous = await server.request("GET", `${base}/ports/8000/`, { token: null });
    expect(anonymous.status).toBe(401);
    const admin = await server.request("GET", `${base}/ports/8000/`);
    expect(admin.status).toBe(404);
  }, 60_000);

  it("answers clearly for a port with nothing listening and for Warden's own ports", async () => {
    const closed = await server.request("GET", `${base}/ports/8001/`, { token: ann });
    expect(closed.status).toBe(502);
    expect(await closed.text()).toMatch(/nothing is listening/);
    const bad = await server.request("GET", `${base}/ports/70000/`, { token: ann });
    expect(bad.status).toBe(400);
    const reserved = await server.request("GET", `${base}/ports/3128/`, { token: ann });
    expect(reserved.status).toBe(400);
  });

  it("carries upgrades (WebSocket) both ways, without passing on the API key", async () => {
    await eventually(async () => {
      const r = await server.request("GET", `${base}/ports/9000/x`, {
        token: ann,
        headers: { cookie: "warden_ui=secret" },
      });
      // Cookies cross neither way: every preview shares Warden's origin.
      return (
        r.status === 200 &&
        (await r.text()) === "plain /x cookie=none" &&
        r.headers.get("set-cookie") === null
      );
    });
    const upgrade = (token: string | null) =>
      new Promise<{ status: number; socket?: Socket; seen?: string }>((resolve, reject) => {
        const req = httpRequest(`${server.url}${base}/ports/9000/ws`, {
          headers: {
            connection: "Upgrade",
            upgrade: "echo",
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
        });
        // The server's first bytes say whether it saw an Authorization header.
        req.on("upgrade", (res, socket, head) => {
          const first = (seen: string): void =>
            resolve({ status: res.statusCode ?? 0, socket, seen: seen.slice(0, 8) });
          if (head.length >= 8) first(head.toString());
          else socket.once("data", (d: Buffer) => first(head.toString() + d.toString()));
        });
        req.on("response", (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0 });
        });
        req.on("error", reject);
        req.end();
      });
    const ok = await upgrade(ann);
    expect(ok.status).toBe(101);
    expect(ok.seen).toBe("auth=no;");
    const echoed = await new Promise<string>((resolve) => {
      ok.socket!.once("data", (d: Buffer) => resolve(d.toString()));
      ok.socket!.write("ping through the session");
    });
    expect(echoed).toBe("ping through the session");
    ok.socket!.destroy();

    expect((await upgrade(bob)).status).toBe(404);
    expect((await upgrade(null)).status).toBe(401);
  }, 60_000);
});
