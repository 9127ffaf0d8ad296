/**
 * A page in a browser can make a victim's browser post to /mcp at line rate
 * with a foreign Origin (or Host, after DNS rebinding). Each is refused, and
 * the refusals go through the refusal log: a flood leaves a bounded number
 * of audit rows, and the summaries still count every one.
 */
import { Agent, request as httpRequest } from "node:http";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";

const limits = { refusalLogPerWindow: 5, refusalLogWindowMs: 1000 };
let server: TestServer;

beforeAll(async () => {
  // Generous rate limits: what is measured is the Origin refusal, not a 429.
  const window = { burst: 100_000, perMinute: 1_000_000, perHour: 10_000_000 };
  server = await startServer({
    config: {
      server: {
        connections: limits,
        rateLimits: { perKey: window, perIp: window, anonymous: window },
      },
    },
  });
});
afterAll(async () => {
  await server?.stop();
});

describe("/mcp refusals", () => {
  it("2,000 bad-Origin requests leave a bounded number of audit rows", async () => {
    const before = server.count("events");
    const agent = new Agent({ keepAlive: true, maxSockets: 10 });
    const send = (i: number): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpRequest(`${server.url}/mcp`, {
          agent,
          method: "POST",
          headers: {
            authorization: `Bearer ${server.adminToken}`,
            origin: `https://evil-${i}.example`,
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
          },
        });
        req.on("response", (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
        req.end('{"jsonrpc":"2.0","id":1,"method":"tools/list"}');
      });
    const total = 2000;
    const codes = new Map<number, number>();
    for (let i = 0; i < total; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, (_, j) => send(i + j)));
      for (const c of batch) codes.set(c, (codes.get(c) ?? 0) + 1);
    }
    agent.destroy();
    expect(codes.get(403)).toBe(total);
    await new Promise((r) => setTimeout(r, 2 * limits.refusalLogWindowMs + 500));
    expect(server.count("events") - before).toBeLessThan(200);
    // Nothing is lost: rows one by one plus the summaries' counts make every refusal.
    const db = new Database(join(server.dataDir, "warden.db"), { readonly: true });
    const one = (sql: string): number => (db.prepare(sql).get() as { n: number | null }).n ?? 0;
    const single = one(
      `SELECT COUNT(*) AS n FROM events WHERE id > ${before} AND event = 'forbidden'`,
    );
    const summed = one(
      `SELECT SUM(json_extract(data, '$.count')) AS n FROM events WHERE id > ${before}
       AND event = 'refusals_suppressed' AND json_extract(data, '$.kind') = 'forbidden'`,
    );
    db.close();
    expect(single + summed).toBe(total);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  }, 120_000);
});
