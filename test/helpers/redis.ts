/**
 * Redis for tests. `privateRedis()`: a real redis-server of the test's own on
 * a free loopback port and temp dir, for tests that restart it, flush it or
 * watch its pub/sub without neighbours. `redisPrefix()`: a key prefix on the
 * shared one (WARDEN_TEST_REDIS_URL), cheap isolation for tests that only
 * read and write their own keys.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { startScratchRedis, type ScratchRedis } from "../../src/cli/local-services.js";

export const TEST_REDIS_URL = process.env.WARDEN_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** Stop it in afterAll/afterEach: `stop()` ends the server and removes its dir. */
export function privateRedis(): Promise<ScratchRedis> {
  return startScratchRedis();
}

export interface RedisPrefix {
  url: string;
  /** `warden_t_<random>:`, for every key the test makes. */
  prefix: string;
  /** Deletes every key under the prefix. */
  clear(): Promise<void>;
}

export function redisPrefix(): RedisPrefix {
  const prefix = `warden_t_${randomBytes(6).toString("hex")}:`;
  return {
    url: TEST_REDIS_URL,
    prefix,
    async clear() {
      const client = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await client.connect();
        let cursor = "0";
        do {
          const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
          if (keys.length > 0) await client.del(...keys);
          cursor = next;
        } while (cursor !== "0");
      } finally {
        client.disconnect();
      }
    },
  };
}
