/**
 * The cluster queue on a real PostgreSQL: the fair order, the per-user and
 * cluster-wide caps under racing claimers, memory fit, exactly-once claims,
 * the fenced finish, kills and the queue timeout.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ClusterQueue, type NewQueued, type QueueLimits } from "../../src/cluster/queue.js";
import { toJob } from "../../src/cluster/job.js";
import { blankResult } from "../../src/contract/result.js";
import type { ExecutionRequest } from "../../src/executions/execution.js";
import { resultOf, type Row, freshDb, testStore, type TestDb, LIMITS } from "./queue-db.js";

let db: TestDb;
let seq = 0;

function job(
  userId: string,
  o: {
    reservationMb?: number;
    createdAt?: number;
    language?: string;
    environment?: string;
    env?: Record<string, string>;
  } = {},
): NewQueued {
  const request: ExecutionRequest = {
    environment: o.environment ? { name: o.environment, key: "", binds: [], env: {} } : null,
    env: o.env,
    language: o.language ?? "python",
    files: [{ path: "main.py", content: "print(1)" }],
    limits: LIMITS,
    network: null,
    retryOnFailure: true,
    userId,
    source: "api",
  };
  const n = ++seq;
  return {
    id: `exec_t${String(n).padStart(6, "0")}`,
    userId,
    keyId: null,
    source: "api",
    language: request.language,
    files: request.files,
    limits: LIMITS,
    job: toJob(request),
    reservationMb: o.reservationMb ?? 128,
    createdAt: o.createdAt ?? Date.now() + n,
  };
}

const room = (workerId: string, freeMemoryMb = 4096) => ({
  workerId,
  languages: ["python"],
  environments: [],
  freeMemoryMb,
});

function queue(limits: Partial<QueueLimits> = {}): ClusterQueue {
  return new ClusterQueue(db.pool, {
    maxQueueSize: 1000,
    maxQueuedPerUser: 1000,
    maxPerUser: 100,
    maxConcurrentTotal: 0,
    ...limits,
  });
}

beforeAll(async () => {
  db = await freshDb();
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query<Row>("TRUNCATE executions, execution_output, events, sessions, workers");
});

describe("cluster queue", () => {
  it("serves the user with the fewest running first, then the oldest job", async () => {
    const q = queue();
    const a1 = job("alice");
    const a2 = job("alice");
    const a3 = job("alice");
    const b1 = job("bob");
    for (const j of [a1, a2, a3, b1]) await q.submit(j);
    const order: string[] = [];
    for (;;) {
      const c = await q.claim(room("w1"));
      if (!c) break;
      order.push(c.id);
    }
    expect(order).toEqual([a1.id, b1.id, a2.id, a3.id]);
    const { rows } = await db.pool.query<Row>(
      "SELECT event FROM events WHERE execution_id = $1 ORDER BY id",
      [a1.id],
    );
    expect(rows.map((r) => r.event)).toEqual(["queued", "started"]);
  });

  it("never lets racing claimers exceed a user's cap (running + live sessions)", async () => {
    const q = queue({ maxPerUser: 3 });
    await testStore(db.pool).sessions.register({
      id: "sess_1",
      userId: "carol",
      keyId: null,
      workerId: "w9",
      language: "python",
      createdAt: Date.now(),
    });
    for (let i = 0; i < 40; i++) await q.submit(job("carol"));
    const running = async (): Promise<number> => {
      const { rows } = await db.pool.query<{ n: string }>(
        "SELECT count(*) AS n FROM executions WHERE user_id = 'carol' AND status = 'running'",
      );
      return Number(rows[0]!.n);
    };
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 8 }, (_, i) => q.claim(room(`w${i % 2}`))));
      expect(await running()).toBe(2); // 3 minus the live session, never more
      // One finishes, making room for exactly one more in the next round.
      await db.pool.query<Row>(
        `UPDATE executions SET status = 'completed' WHERE id =
           (SELECT id FROM executions WHERE user_id = 'carol' AND status = 'running' LIMIT 1)`,
      );
    }
  });

  it("claims each job exactly once under concurrent claimers", async () => {
    const q = queue();
    const ids = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const j = job(`user${i % 7}`);
      ids.add(j.id);
      await q.submit(j);
    }
    const claimed: string[] = [];
    const claimer = async (w: string): Promise<void> => {
      for (;;) {
        const c = await q.claim(room(w));
        if (!c) return;
        claimed.push(c.id);
      }
    };
    await Promise.all(["w1", "w2", "w3", "w4"].map(claimer));
    expect(claimed.length).toBe(40);
    expect(new Set(claimed)).toEqual(ids);
    const { rows } = await db.pool.query<Row>("SELECT DISTINCT attempt FROM executions");
    expect(rows).toEqual([{ attempt: 1 }]);
  });

  it("leaves jobs that do not fit this worker's memory, language or environment", async () => {
    const q = queue();
    const big = job("dave", { reservationMb: 1024 });
    const ruby = job("erin", { language: "ruby" });
    const small = job("dave", { reservationMb: 64 });
    for (const j of [big, ruby, small]) await q.submit(j);
    expect((await q.claim(room("w1", 512)))?.id).toBe(small.id);
    expect(await q.claim(room("w1", 512))).toBeNull();
    expect((await q.claim(room("w2", 2048)))?.id).toBe(big.id);
  });

  it("gives a job that needs an environment only to a worker that has it", async () => {
    const q = queue();
    const sci = job("lee", { environment: "sci" });
    // Looks like an environment in the row's text, needs none.
    const decoy = job("lee", { env: { environment: "sci" } });
    await q.submit(sci);
    await q.submit(decoy);
    expect((await q.claim(room("plain")))?.id).toBe(decoy.id);
    expect(await q.claim(room("plain"))).toBeNull();
    expect((await q.claim({ ...room("sci"), environments: ["sci"] }))?.id).toBe(sci.id);
  });

  it("holds cluster.maxConcurrentTotal across workers", async () => {
    const q = queue({ maxConcurrentTotal: 3 });
    for (let i = 0; i < 8; i++) await q.submit(job(`u${i}`));
    await Promise.all(Array.from({ length: 8 }, (_, i) => q.claim(room(`w${i % 2}`))));
    const { rows } = await db.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM executions WHERE status = 'running'",
    );
    expect(Number(rows[0]!.n)).toBe(3);
  });

  it("refuses a full queue and a user's full share with SANDBOX_BUSY", async () => {
    const q = queue({ maxQueueSize: 3, maxQueuedPerUser: 2 });
    await q.submit(job("fay"));
    await q.submit(job("fay"));
    await expect(q.submit(job("fay"))).rejects.toMatchObject({
      code: "SANDBOX_BUSY",
      details: { reason: "user_queue_full" },
    });
    await q.submit(job("gus"));
    await expect(q.submit(job("hal"))).rejects.toMatchObject({ details: { reason: "queue_full" } });
  });

  it("fences the finish: a worker that lost its job cannot write it", async () => {
    const q = queue();
    const j = job("ivy");
    await q.submit(j);
    const first = (await q.claim(room("w1")))!;
    // The reaper re-queued it (w1 declared dead); w2 claims it again.
    await db.pool.query<Row>(
      "UPDATE executions SET status = 'queued', worker_id = NULL WHERE id = $1",
      [j.id],
    );
    const second = (await q.claim(room("w2")))!;
    expect(second.attempt).toBe(2);
    const result = (s: "completed" | "failed") => ({ ...blankResult(j.id, s, null), stdout: s });
    const event = { executionId: j.id, level: "info" as const, event: "end", message: "end" };
    expect(
      await q.finish({ id: j.id, workerId: "w1", attempt: first.attempt }, result("failed"), event),
    ).toBe(false);
    expect(
      await q.finish(
        { id: j.id, workerId: "w2", attempt: second.attempt },
        result("completed"),
        event,
      ),
    ).toBe(true);
    // Twice is refused too: a job completes once.
    expect(
      await q.finish(
        { id: j.id, workerId: "w2", attempt: second.attempt },
        result("failed"),
        event,
      ),
    ).toBe(false);
    const { rows } = await db.pool.query<Row>(
      "SELECT status, request FROM executions WHERE id = $1",
      [j.id],
    );
    expect(rows[0]).toEqual({ status: "completed", request: null });
    const out = await db.pool.query<Row>(
      "SELECT data FROM execution_output WHERE execution_id = $1",
      [j.id],
    );
    expect(String(out.rows[0]!.data)).toBe("completed");
  });

  it("kills a queued job at once and hands a running one to its worker", async () => {
    const q = queue();
    const running = job("jan");
    const queued = job("jan");
    await q.submit(running);
    await q.submit(queued);
    await q.claim(room("w1"));
    expect(await q.kill(queued.id, "user")).toMatchObject({ was: "queued" });
    expect(await q.statusOf(queued.id)).toBe("killed");
    expect(await q.kill(running.id, "user")).toMatchObject({ was: "running", workerId: "w1" });
    expect(await q.killsFor("w1", [running.id])).toEqual([{ id: running.id, reason: "user" }]);
    expect(await q.kill(queued.id, "again")).toBeNull();
  });

  it("rejects jobs that waited past the queue timeout", async () => {
    const q = queue();
    const old = job("kim", { createdAt: Date.now() - 60_000 });
    const fresh = job("kim");
    await q.submit(old);
    await q.submit(fresh);
    expect(await q.expireQueued(30_000)).toEqual([old.id]);
    const { rows } = await db.pool.query<Row>(
      "SELECT status, result FROM executions WHERE id = $1",
      [old.id],
    );
    expect(rows[0]!.status).toBe("rejected");
    expect(resultOf(rows[0]!.result).error?.code).toBe("SANDBOX_BUSY");
    expect(await q.statusOf(fresh.id)).toBe("queued");
  });
});
