/**
 * Starts a real `warden serve` process on a loopback port with a data dir of
 * its own, for tests that exercise the service as a client would.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest } from "node:http";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";

const root = join(import.meta.dirname, "..", "..");

export interface TestServer {
  url: string;
  adminToken: string;
  dataDir: string;
  configFile: string;
  process: ChildProcess;
  logs: string[];
  /** fetch with the admin key (or another token) and JSON body handling. */
  request(
    method: string,
    path: string,
    options?: {
      body?: unknown;
      token?: string | null;
      headers?: Record<string, string>;
      raw?: string;
    },
  ): Promise<Response>;
  /** Counts rows in the server's store (read-only). */
  count(table: "executions" | "events", where?: string): number;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startServer(
  options: {
    config?: Record<string, unknown>;
    env?: Record<string, string>;
    dataDir?: string;
  } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "warden-serve-"));
  const configFile = join(dataDir, "..", `${dataDir.split("/").pop()}.json`);
  writeFileSync(configFile, JSON.stringify(options.config ?? {}));
  const adminToken = "test-admin-token-0123456789";
  const child = spawn(process.execPath, [join(root, "bin", "warden.js"), "serve"], {
    cwd: root,
    env: {
      ...process.env,
      WARDEN_DATA_DIR: dataDir,
      WARDEN_ADMIN_TOKEN: adminToken,
      WARDEN_PORT: "0",
      WARDEN_CONFIG: configFile,
      WARDEN_LOG_LEVEL: "info",
      // Every server would start sandboxes ahead; the pool's own tests turn it on.
      WARDEN_POOL: "false",
      ...options.env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const logs: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start:\n${logs.join("\n")}`)),
      30_000,
    );
    let buffer = "";
    child.stderr.on("data", (d: Buffer) => {
      buffer += d.toString();
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        logs.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; address?: string };
          if (entry.msg === "warden serving" && entry.address) {
            clearTimeout(timer);
            resolve(entry.address);
          }
        } catch {
          // not a log line
        }
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${logs.join("\n")}`));
    });
  });
  const server: TestServer = {
    url,
    adminToken,
    dataDir,
    configFile,
    process: child,
    logs,
    request(method, path, o = {}) {
      const token = o.token === undefined ? adminToken : o.token;
      const headers: Record<string, string> = { ...o.headers };
      if (token) headers.authorization = `Bearer ${token}`;
      let body: string | undefined = o.raw;
      if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers["content-type"] ??= "application/json";
      }
      return fetch(`${url}${path}`, { method, headers, body });
    },
    count(table, where = "1=1") {
      const db = new Database(join(dataDir, "warden.db"), { readonly: true, fileMustExist: true });
      try {
        return (
          db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`).get() as { n: number }
        ).n;
      } finally {
        db.close();
      }
    },
    stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null)
        return Promise.resolve(child.exitCode);
      return new Promise((resolve) => {
        child.once("exit", (code) => resolve(code));
        child.kill(signal);
      });
    },
  };
  return server;
}

/** Makes a key through the CLI against the server's data dir; returns the token. */
export function createKey(
  server: TestServer,
  name: string,
  scopes: string,
  user?: string,
  allowNet?: string[],
  policy?: "off" | "audit" | "block",
): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = [
      join(root, "bin", "warden.js"),
      "keys",
      "create",
      "--name",
      name,
      "--scopes",
      scopes,
    ];
    if (user) args.push("--user", user);
    if (allowNet) args.push("--allow-net", allowNet.join(","));
    if (policy) args.push("--policy", policy);
    const child = spawn(process.execPath, args, {
      env: { ...process.env, WARDEN_DATA_DIR: server.dataDir, WARDEN_CONFIG: server.configFile },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("close", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(err))));
  });
}

/** Polls `check` until it holds (the machine may be busy), failing after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Declares a huge body and sends only its first 64 KiB: the server must refuse
 * on the declared length, without reading it. Resolves with the status.
 */
export function declaredUpload(
  server: TestServer,
  method: string,
  path: string,
  token: string,
  bytes: number,
  contentType = "application/octet-stream",
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": contentType,
        "content-length": bytes,
      },
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    req.on("error", (e: NodeJS.ErrnoException) =>
      e.code === "EPIPE" || e.code === "ECONNRESET" ? undefined : reject(e),
    );
    req.write(Buffer.alloc(64 * 1024));
  });
}

/**
 * A process's resident memory (VmRSS, or its peak VmHWM) in bytes, read from
 * /proc. Throws when the process is gone: a bound on a dead server's memory
 * must not pass by reading 0.
 */
export function rssBytes(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1];
  if (kb === undefined) throw new Error(`no ${field} for process ${pid}`);
  return Number(kb) * 1024;
}
