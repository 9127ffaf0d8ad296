/**
 * A hostile "web server" for preview attack tests: a raw-socket Python program
 * that runs inside a session and answers each request path with one kind of
 * broken, malicious or endless HTTP. Plus raw clients that show exactly what
 * Warden sends back (status, every header, body or how it ended).
 */
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { connect, type Socket } from "node:net";
import { expect } from "vitest";
import { createKey, eventually, type TestServer } from "../helpers/server.js";

/** Response headers a preview must never set on Warden's origin. */
export const FORBIDDEN_RESPONSE_HEADERS = [
  "set-cookie",
  "www-authenticate",
  "proxy-authenticate",
  "x-frame-options",
  "access-control-allow-origin",
  "access-control-allow-credentials",
  "strict-transport-security",
  "clear-site-data",
  "link",
  "service-worker-allowed",
  "refresh",
  "content-location",
  "x-planted",
];

/**
 * /m/MODE: a plain answer; /u/MODE: an answer to an upgrade; /f/N: fuzz case N
 * from /workspace/fuzz.json (base64 answers the test uploaded).
 */
export const HOSTILE_SERVER = String.raw`
import base64, json, socket, sys, threading, time
PORT = int(sys.argv[1])
OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
FORBIDDEN = (b"Set-Cookie: sid=planted; Path=/\r\nSet-Cookie: other=1\r\n"
  b"WWW-Authenticate: Basic realm=warden\r\nProxy-Authenticate: Basic\r\n"
  b"X-Frame-Options: ALLOWALL\r\nAccess-Control-Allow-Origin: *\r\n"
  b"Access-Control-Allow-Credentials: true\r\nContent-Security-Policy: default-src *\r\n"
  b"Strict-Transport-Security: max-age=999999\r\nClear-Site-Data: \"*\"\r\n"
  b"Link: </evil.js>; rel=preload; as=script\r\nService-Worker-Allowed: /\r\n"
  b"Refresh: 0; url=https://evil.example/\r\nContent-Location: /v1/keys\r\nX-Planted: 1\r\n")
SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n"
FLOOD = b"x" * 65536

def plain(mode, head):
    if mode == "status-999": return [b"HTTP/1.1 999 Nine\r\nContent-Length: 2\r\n\r\nhi"]
    if mode == "status-600": return [b"HTTP/1.1 600 Six\r\nContent-Length: 2\r\n\r\nhi"]
    if mode == "status-099": return [b"HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nhi"]
    if mode == "status-101": return [SWITCH + b"\r\nnot a protocol"]
    if mode == "garbage": return [b"\x00\xffSSH-2.0-not http at all\r\n\r\n"]
    if mode == "empty": return []
    if mode == "header-nul": return [OK_HEAD + b"X-A: a\x00b\r\nContent-Length: 2\r\n\r\nhi"]
    if mode == "header-cr": return [OK_HEAD + b"X-A: a\rSet-Cookie: x=1\r\nContent-Length: 2\r\n\r\nhi"]
    if mode == "header-lf": return [OK_HEAD + b"X-A: a\nSet-Cookie: x=1\r\nContent-Length: 2\r\n\r\nhi"]
    if mode == "header-name": return [OK_HEAD + b"Bad Name: x\r\nContent-Length: 2\r\n\r\nhi"]
    if mode == "header-ctl": return [OK_HEAD + b"Content-Disposition: a\x7fb\x01c\r\nContent-Length: 2\r\n\r\nhi"]
    if mode == "obs-fold": return [OK_HEAD + b"X-A: a\r\n Set-Cookie: x=1\r\nContent-Length: 2\r\n\r\nhi"]
    if mode == "dup-length": return [OK_HEAD + b"Content-Length: 2\r\nContent-Length: 5\r\n\r\nhello"]
    if mode == "length-chunked": return [OK_HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"]
    if mode == "bad-length": return [OK_HEAD + b"Content-Length: -5\r\n\r\nhello"]
    if mode == "huge-header": return [OK_HEAD + b"X-Big: " + b"a" * 200000 + b"\r\n\r\n"]
    if mode == "many-headers": return [OK_HEAD + b"".join(b"X-%d: 1\r\n" % i for i in range(1000)) + b"Content-Length: 2\r\n\r\nhi"]
    if mode == "dup-type": return [OK_HEAD + b"Content-Type: text/html\r\nContent-Length: 2\r\n\r\nhi"]
    if mode == "bad-chunked": return [OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"]
    if mode == "abrupt": return [OK_HEAD + b"Content-Length: 100000\r\n\r\nonly ten b"]
    if mode == "no-end": return [b"HTTP/1.1 200 OK\r\n", 600]
    if mode == "drip": return [b"HTTP/1.1 200 OK\r\n"] + [x for i in range(600) for x in (b"X-D: 1\r\n", 0.5)]
    if mode == "hints-flood": return [x for i in range(100000) for x in (b"HTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n\r\n", 0.01)]
    if mode == "flood": return [OK_HEAD + b"\r\n"] + [FLOOD] * 100000
    if mode == "forbidden":
        return [OK_HEAD + FORBIDDEN + b"Cache-Control: no-store\r\nETag: \"v1\"\r\nContent-Length: 2\r\n\r\nhi"]
    if mode == "challenge": return [b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=warden\r\nContent-Length: 4\r\n\r\nnope"]
    if mode == "echo-request":
        return [OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(head) + head]
    if mode.startswith("loc-"):
        where = {"ext": b"https://evil.example/x", "scheme-rel": b"//evil.example/x",
                 "backslash": b"/\\evil.example/x", "js": b"javascript:alert(1)",
                 "root": b"/next?a=1", "relative": b"next", "up": b"../../../../../../v1/keys",
                 "loopback": b"http://127.0.0.1:%d/back" % PORT, "other-port": b"http://127.0.0.1:1/x",
                 "prefixed": b"PREFIX/already"}[mode[4:]]
        if mode == "loc-prefixed":
            prefix = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"x-forwarded-prefix:")]
            where = where.replace(b"PREFIX", prefix[0] if prefix else b"")
        return [b"HTTP/1.1 302 Found\r\nLocation: " + where + b"\r\nContent-Length: 0\r\n\r\n"]
    return [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"]

def upgrade(mode, head):
    if mode == "junk": return [b"this is not a response\r\n\r\n"]
    if mode == "no-upgrade": return [b"HTTP/1.1 101 Switching Protocols\r\nConnection: close\r\n\r\nzzz"]
    if mode == "other-protocol": return [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nzzz"]
    if mode == "cookie": return [SWITCH + FORBIDDEN + b"\r\n", "echo"]
    if mode == "challenge":
        return [b"HTTP/1.1 401 Unauthorized\r\n" + FORBIDDEN + b"Content-Length: 5\r\n\r\nnope!"]
    if mode == "huge-header": return [SWITCH + b"X-Big: " + b"a" * 200000 + b"\r\n\r\n"]
    if mode == "no-end": return [b"HTTP/1.1 101 Switching Protocols\r\n", 600]
    if mode == "flood": return [SWITCH + b"\r\n"] + [FLOOD] * 100000
    if mode == "echo-request": return [SWITCH + b"\r\n" + head]
    return [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"]

def fuzz(n):
    with open("/workspace/fuzz.json") as f:
        return [base64.b64decode(json.load(f)[n])]

def serve(conn):
    try:
        conn.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = conn.recv(4096)
            if not data: return
            head += data
        path = head.split(b" ", 2)[1].decode()
        kind, name = path.split("/")[1:3]
        steps = plain(name, head) if kind == "m" else upgrade(name, head) if kind == "u" else fuzz(int(name))
        conn.settimeout(None)
        for step in steps:
            if step == "echo":
                while True:
                    data = conn.recv(4096)
                    if not data: break
                    conn.sendall(data)
            elif isinstance(step, (int, float)): time.sleep(step)
            else: conn.sendall(step)
    except Exception:
        pass
    finally:
        try: conn.shutdown(socket.SHUT_RDWR)
        except Exception: pass
        conn.close()

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", PORT))
s.listen(128)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

/**
 * A world of its own for one test file's `warden serve` (run dir, cgroup
 * parent, uid range): the run dir holds the agent Warden copies into its
 * sandboxes, which another Warden of another build starting on the same host
 * would otherwise replace under this one's sessions.
 */
export function ownWorld(name: string, uidBase: number): Record<string, string> {
  return {
    WARDEN_RUN_DIR: `/run/warden-${name}`,
    WARDEN_CGROUP_PARENT: `warden-${name}`,
    WARDEN_UID_BASE: String(uidBase),
    WARDEN_UID_COUNT: "100",
  };
}

/** A session of `user` running the hostile server on `port`; returns its API base path. */
export async function hostileSession(
  server: TestServer,
  token: string,
  port: number,
  files: Record<string, string> = {},
): Promise<string> {
  const created = await server.request("POST", "/v1/sessions", { token, body: { timeout: 900 } });
  expect(created.status).toBe(201);
  const base = `/v1/sessions/${((await created.json()) as { id: string }).id}`;
  for (const [path, content] of Object.entries({ "hostile.py": HOSTILE_SERVER, ...files })) {
    const put = await server.request("PUT", `${base}/files/${path}`, {
      token,
      raw: content,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(put.status).toBe(204);
  }
  const started = await server.request("POST", `${base}/commands`, {
    token,
    body: { command: ["python3", "hostile.py", String(port)], background: true },
  });
  expect(started.status).toBe(202);
  await eventually(async () => {
    const r = await server.request("GET", `${base}/ports/${port}/m/none`, { token });
    return r.status === 404;
  }, 30_000);
  return base;
}

export async function sessionsKey(server: TestServer, user: string): Promise<string> {
  return createKey(server, `${user}-preview`, "sessions", user);
}

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** How the body ended: "end", or the error that cut it ("aborted", a code). */
  ended: string;
}

/** One request to Warden with node:http, reporting how it ended instead of throwing. */
export function rawGet(
  server: TestServer,
  path: string,
  headers: Record<string, string>,
  timeoutMs = 60_000,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}${path}`, { headers });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on("response", (res) => {
      let body = "";
      const done = (ended: string): void => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ended });
      };
      res.on("data", (d: Buffer) => (body += d.toString("latin1")));
      res.on("end", () => done("end"));
      res.on("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
      res.on("aborted", () => done("aborted"));
    });
    req.end();
  });
}

export interface UpgradeAnswer {
  /** The response head Warden sent, as text; "" when it closed without one. */
  head: string;
  status: number;
  socket: Socket;
  /** Bytes after the head that arrived with it. */
  rest: Buffer;
}

/** Sends an upgrade request over a raw socket and reads Warden's response head. */
export function rawUpgrade(
  server: TestServer,
  path: string,
  headers: Record<string, string>,
  timeoutMs = 60_000,
): Promise<UpgradeAnswer> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${path}: no upgrade answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (head: string, rest: Buffer): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ head, status, socket, rest });
    };
    const onData = (d: Buffer): void => {
      buffer = Buffer.concat([buffer, d]);
      const end = buffer.indexOf("\r\n\r\n");
      if (end >= 0) finish(buffer.subarray(0, end).toString("latin1"), buffer.subarray(end + 4));
    };
    socket.on("data", onData);
    socket.on("close", () => finish(buffer.toString("latin1"), Buffer.alloc(0)));
    socket.on("connect", () => {
      const lines = [`GET ${path} HTTP/1.1`, `Host: ${hostname}:${port}`];
      for (const [name, value] of Object.entries({
        Connection: "Upgrade",
        Upgrade: "echo",
        ...headers,
      }))
        lines.push(`${name}: ${value}`);
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Header names in a raw response head, lower-cased. */
export function headNames(head: string): string[] {
  return head
    .split("\r\n")
    .slice(1)
    .map((l) => l.split(":")[0]!.trim().toLowerCase());
}

/** Resident memory of a process in bytes, from /proc. */
/** Fails on any header a preview must never set on Warden's origin (X-Frame-Options only as Warden's DENY). */
export function expectNoForbidden(headers: Record<string, unknown>, what = ""): void {
  for (const name of FORBIDDEN_RESPONSE_HEADERS)
    if (name === "x-frame-options") expect([undefined, "DENY"], what).toContain(headers[name]);
    else expect(headers[name], `${what} ${name}`).toBeUndefined();
  expect(headers["content-security-policy"] ?? "sandbox").toMatch(/^sandbox |^default-src 'self'/);
}
