/**
 * Throwaway PostgreSQL databases and Redis servers on this machine, for
 * `warden bench --cluster` and the cluster tests: each run gets state of its
 * own, and removes it afterwards, so two runs never see each other's queue.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** A database made for one run; `drop()` removes it (safe to call twice). */
export interface ScratchDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** A `redis-server` of one run's own on a loopback port; `stop()` removes it and its dir. */
export interface ScratchRedis {
  url: string;
  port: number;
  pid: number;
  dir: string;
  stop(): Promise<void>;
}

/** A free loopback TCP port (the kernel's pick; the caller binds it soon after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (error) {
    const where = new URL(url);
    throw new Error(
      `PostgreSQL at ${where.host} refused the connection (${(error as Error).message}); ` +
        "start it (scripts/setup.sh --test) or point WARDEN_TEST_DATABASE_URL at one",
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates `warden_t_<random>` through `adminUrl` (a role that may create
 * databases) and answers its URL: the same server and credentials, the new name.
 */
export async function createScratchDatabase(
  adminUrl: string,
  prefix = "warden_t_",
): Promise<ScratchDatabase> {
  const name = `${prefix}${randomBytes(6).toString("hex")}`;
  // The name is ours ([a-z0-9_]), never a caller's: safe to put in the statement.
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      // FORCE: a SIGKILLed node's connections may linger until the server notices.
      await withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

function waitForExit(child: ReturnType<typeof spawn>, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts `redis-server` on a free loopback port with a temp dir of its own,
 * no persistence, in the foreground (so it is this process's child and is
 * stopped by pid, never by name). Resolves once it accepts connections.
 */
export async function startScratchRedis(binary = "redis-server"): Promise<ScratchRedis> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "warden-redis-"));
    const child = spawn(
      binary,
      [
        "--bind", "127.0.0.1", "--port", String(port), "--dir", dir,
        "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
      ], // prettier-ignore
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    // A crash of this process must not leave the server behind.
    const orphan = (): void => void child.kill("SIGKILL");
    process.once("exit", orphan);
    child.once("exit", () => process.removeListener("exit", orphan));
    let log = "";
    const collect = (d: Buffer): void => {
      if (log.length < 16_384) log += d.toString();
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    const ready = await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      child.once("error", (error) => {
        clearTimeout(timer);
        reject(
          new Error(`cannot start ${binary}: ${error.message} (apt-get install redis-server)`),
        );
      });
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
      child.stdout.on("data", () => {
        if (log.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    const stop = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        if (!(await waitForExit(child, 5000))) {
          child.kill("SIGKILL");
          await waitForExit(child, 5000);
        }
      }
      rmSync(dir, { recursive: true, force: true });
    };
    if (ready) return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid!, dir, stop };
    await stop();
    // Another process took the port between the probe and the bind: try another.
    if (attempt >= 2 || !log.includes("Address already in use"))
      throw new Error(`redis-server did not start on port ${port}:\n${log.slice(-2000)}`);
  }
}
