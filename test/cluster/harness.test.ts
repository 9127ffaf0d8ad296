/**
 * The cluster tests' own fixtures: a scratch database is made and dropped, a
 * private redis-server starts and leaves nothing, a key prefix clears only its
 * keys, and a node that dies while starting fails with its logs and leaves
 * no world behind.
 */
import { existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { Redis } from "ioredis";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { LocalCluster } from "../../src/cli/local-cluster.js";
import { cgroupDirs, processesInUidRange } from "../../src/cli/local-nodes.js";
import { freshDatabase, TEST_DATABASE_URL } from "../helpers/postgres.js";
import { privateRedis, redisPrefix } from "../helpers/redis.js";

async function databaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return (
      (await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).rowCount === 1
    );
  } finally {
    await client.end();
  }
}

async function databasesOf(tag: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    const rows = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE $1",
      [`warden_t_${tag}_%`],
    );
    return rows.rows.map((r) => r.datname);
  } finally {
    await client.end();
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("cluster test fixtures", () => {
  it("makes a database of the test's own and drops it, open connections and all", async () => {
    const db = await freshDatabase();
    const name = new URL(db.url).pathname.slice(1);
    expect(name).toMatch(/^warden_t_[0-9a-f]{12}$/);
    const client = new pg.Client({ connectionString: db.url });
    client.on("error", () => undefined); // the forced drop ends its connection
    await client.connect();
    await client.query("CREATE TABLE t (x int)");
    expect(await databaseExists(name)).toBe(true);
    // A SIGKILLed node leaves its connections open: the drop must not wait for them.
    await db.drop();
    await db.drop(); // twice is harmless
    await client.end().catch(() => undefined);
    expect(await databaseExists(name)).toBe(false);
  });

  it("runs a private redis-server and stops it without a trace", async () => {
    const redis = await privateRedis();
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      expect(await client.ping()).toBe("PONG");
      expect(await client.dbsize()).toBe(0);
    } finally {
      client.disconnect();
    }
    await redis.stop();
    expect(pidAlive(redis.pid)).toBe(false);
    expect(existsSync(redis.dir)).toBe(false);
    await redis.stop();
  });

  it("clears only its own prefix on the shared Redis", async () => {
    const mine = redisPrefix();
    const other = redisPrefix();
    const client = new Redis(mine.url, { maxRetriesPerRequest: 1 });
    try {
      await client.set(`${mine.prefix}a`, "1");
      await client.set(`${mine.prefix}b`, "1");
      await client.set(`${other.prefix}a`, "1");
      await mine.clear();
      expect(await client.exists(`${mine.prefix}a`, `${mine.prefix}b`)).toBe(0);
      expect(await client.exists(`${other.prefix}a`)).toBe(1);
      await other.clear();
    } finally {
      client.disconnect();
    }
  });

  it("fails a node that dies while starting with its logs, and removes its world", async () => {
    // A config every build refuses at start.
    const error = await LocalCluster.start({
      adminDatabaseUrl: TEST_DATABASE_URL,
      workers: 1,
      uidBase: 795_000,
      config: { maxConcurrentSandboxes: -1 },
    }).then(
      () => new Error("the cluster started"),
      (e: Error) => e,
    );
    const match =
      /^cluster (c[0-9a-f]{6}): api \(api\) exited while starting \(code \d+\):\n\s*\S/.exec(
        error.message,
      );
    expect(match, error.message).not.toBeNull();
    const tag = match![1]!;
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith(`warden-${tag}-`))).toEqual([]);
    expect(readdirSync("/run").filter((n) => n.startsWith(`warden-${tag}-`))).toEqual([]);
    expect(cgroupDirs(`warden-${tag}-api`)).toEqual([]);
    expect(processesInUidRange(795_000, 400)).toEqual([]);
    expect(await databasesOf(tag), "the cluster's database").toEqual([]);
  });
});
