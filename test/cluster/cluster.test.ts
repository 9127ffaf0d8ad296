/**
 * The cluster end to end, as the issue asks: one API node and two workers as
 * real `warden serve --role ...` processes on a fresh PostgreSQL database and
 * a private Redis, every call through the API node as a client makes it.
 * Work lands on both workers; a user's cap holds across them; sessions are
 * routed to the worker that holds them; an API node restart loses nothing;
 * SIGTERM drains a worker; SIGKILL of a worker loses nothing and leaves
 * nothing running. The shared database is read directly only to see what the
 * API does not show: which worker ran what, and what was running when.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cgroupDirs, processesInUidRange } from "../../src/cli/local-nodes.js";
import { startCluster, type LocalNode, type TestCluster } from "../helpers/cluster.js";

const CAP = 2; // maxSandboxesPerUser, cluster-wide
const PER_WORKER = 3; // maxConcurrentSandboxes, per worker
const UID_BASE = 780_000;
const lavish = { burst: 100_000, perMinute: 1_000_000, perHour: 10_000_000 };

let c: TestCluster;
let tag: string;

beforeAll(async () => {
  c = await startCluster({
    workers: 2,
    uidBase: UID_BASE,
    config: {
      maxConcurrentSandboxes: PER_WORKER,
      maxSandboxesPerUser: CAP,
      server: { rateLimits: { perKey: lavish, perIp: lavish }, shutdownGracePeriod: 60 },
    },
  });
  tag = c.local.tag;
});

afterAll(async () => {
  if (!c) return;
  const { forced, swept } = await c.close();
  expect(forced, "nodes that did not stop within 30 s of SIGTERM").toEqual([]);
  // A clean stop leaves nothing to sweep: no process, no sandbox cgroup, no mount.
  const left = swept.filter((r) => r.processes + r.cgroups + r.mounts > 0);
  expect(left, "what the nodes left behind").toEqual([]);
  expect(processesInUidRange(UID_BASE, 200 * 8), "sandbox processes").toEqual([]);
  const dirs = readdirSync("/run").filter((n) => n.startsWith(`warden-${tag}-`));
  expect(dirs, "run dirs").toEqual([]);
  for (const name of ["api", "w1", "w2", "w3"])
    expect(cgroupDirs(`warden-${tag}-${name}`), `cgroups of ${name}`).toEqual([]);
  expect(existsSync(c.local.redis?.dir ?? "/nonexistent"), "the private Redis' dir").toBe(false);
});

interface Row extends Record<string, unknown> {
  id: string;
  user_id: string;
  status: string;
  worker_id: string | null;
  attempt: number;
}

interface Result {
  id: string;
  status: string;
  stdout: string;
  error: { code: string; message: string; retryable: boolean } | null;
}

const isFinal = (status: string): boolean => status !== "queued" && status !== "running";

/** Queues a python program for `userId` (the admin key delegates) and answers its id. */
async function submit(userId: string, code: string): Promise<string> {
  const body = await c.json<{ id: string }>("POST", "/v1/executions", 202, {
    body: { language: "python", code, wait: false, userId, timeout: 120 },
  });
  return body.id;
}

const sleeper = (seconds: number, say: string): string =>
  `import time\ntime.sleep(${seconds})\nprint(${JSON.stringify(say)})`;

async function rows(ids: string[]): Promise<Row[]> {
  return c.sql<Row>(
    "SELECT id, user_id, status, worker_id, attempt FROM executions WHERE id = ANY($1)",
    [ids],
  );
}

const summary = (rs: Row[]): string =>
  rs.map((r) => `${r.id}:${r.status}@${r.worker_id ?? "-"}#${r.attempt}`).join(" ");

/** Waits until every execution is final (read from the store), then reads each through the API. */
async function finals(ids: string[], timeoutMs = 120_000): Promise<Map<string, Result>> {
  await c.until(
    `${ids.length} executions to end`,
    async () => (await rows(ids)).every((r) => isFinal(r.status)),
    timeoutMs,
    async () => summary(await rows(ids)),
  );
  const results = new Map<string, Result>();
  for (const id of ids) results.set(id, await c.json<Result>("GET", `/v1/executions/${id}`, 200));
  return results;
}

function workerName(id: string | null): string {
  const node = c.workers.find((w) => w.spec.workerId === id);
  return node ? `${node.spec.name} (${id})` : `${id ?? "no worker"}`;
}

/** Programs of executions (python's main.py, not a session's agent) in a node's sandboxes. */
function programsOn(node: LocalNode): number {
  return processesInUidRange(node.spec.uidBase, node.spec.uidCount).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("main.py");
    } catch {
      return false; // exited while we looked
    }
  }).length;
}

/**
 * Starts a session for the key's user and waits until the workers' heartbeats
 * count it: placement reads the load from the heartbeat, so a second session
 * started before that would see the first worker still empty.
 */
async function newSession(token: string): Promise<string> {
  const total = async (): Promise<number> =>
    (await c.listing()).reduce((sum, w) => sum + (w.state === "active" ? w.sessions : 0), 0);
  const before = await total();
  const { id } = await c.json<{ id: string }>("POST", "/v1/sessions", 201, { token, body: {} });
  await c.until(
    `session ${id} to be counted in the workers' heartbeats`,
    async () => (await total()) > before,
    10_000,
    async () => JSON.stringify(await c.listing()),
  );
  return id;
}

describe("cluster: one API node, two workers", () => {
  it("lands work on both workers and answers every result through the API node", async () => {
    const listed = await c.listing();
    for (const w of c.workers)
      expect(
        listed.find((l) => l.id === w.spec.workerId)?.state,
        `${w.spec.name} in the admin listing: ${JSON.stringify(listed)}`,
      ).toBe("active");
    const ids: string[] = [];
    for (let i = 0; i < 16; i++) ids.push(await submit(`spread-${i % 4}`, sleeper(0.5, `r${i}`)));
    const results = await finals(ids);
    ids.forEach((id, i) =>
      expect(results.get(id), `execution ${i}`).toMatchObject({
        status: "completed",
        stdout: `r${i}\n`,
      }),
    );
    // The API node has no runtimes of its own: it lists what its workers detected, with versions.
    const runtimes = await c.json<{ language: string; version: string | null }[]>(
      "GET",
      "/v1/runtimes",
      200,
    );
    expect(runtimes.find((r) => r.language === "python")?.version).toMatch(/^3\./);
    const perWorker = new Map<string, number>();
    for (const r of await rows(ids))
      perWorker.set(workerName(r.worker_id), (perWorker.get(workerName(r.worker_id)) ?? 0) + 1);
    const counts = JSON.stringify(Object.fromEntries(perWorker));
    for (const w of c.workers)
      expect(
        perWorker.get(workerName(w.spec.workerId!)) ?? 0,
        `executions per worker: ${counts}`,
      ).toBeGreaterThan(0);
  });

  it("holds a user's maxSandboxesPerUser across the workers", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(await submit("flood", sleeper(1.5, `f${i}`)));
    // Sampled from the store: the claim sets running, so this is the cluster-wide truth.
    const samples: string[] = [];
    let peak = 0;
    let done = false;
    const sampler = (async () => {
      while (!done) {
        const running = await c.sql<{ worker_id: string; n: string }>(
          "SELECT worker_id, count(*) AS n FROM executions WHERE user_id = 'flood' AND status = 'running' GROUP BY worker_id",
        );
        const total = running.reduce((s, r) => s + Number(r.n), 0);
        peak = Math.max(peak, total);
        if (total > CAP || samples.length < 200)
          samples.push(running.map((r) => `${workerName(r.worker_id)}=${r.n}`).join(",") || "0");
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const results = await finals(ids).finally(() => (done = true));
    await sampler;
    expect(peak, `running for user flood, sampled: ${samples.join(" | ")}`).toBeLessThanOrEqual(
      CAP,
    );
    // Reaching the cap shows the runs overlapped: a cluster that ran one at a time proves nothing.
    expect(peak, `the cap was never reached: ${samples.join(" | ")}`).toBe(CAP);
    for (const id of ids) expect(results.get(id)?.status, id).toBe("completed");
  });

  it("routes each session's calls through the API node to the worker that holds it", async () => {
    const key = await c.json<{ token: string }>("POST", "/api/sandbox/keys", 201, {
      body: { name: "routed", userId: "routed", scopes: ["sessions"] },
    });
    const token = key.token;
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push(await newSession(token));
    const placed = await c.sql<{ id: string; worker_id: string }>(
      "SELECT id, worker_id FROM sessions WHERE id = ANY($1)",
      [ids],
    );
    const where = JSON.stringify(placed.map((p) => [p.id, workerName(p.worker_id)]));
    expect(placed, `registry rows of the sessions: ${where}`).toHaveLength(2);
    // Placement picks the worker with the most room: the second session goes to the other one.
    expect(new Set(placed.map((p) => p.worker_id)).size, `placement: ${where}`).toBe(2);
    for (const [i, id] of ids.entries()) {
      const put = await c.request("PUT", `/v1/sessions/${id}/files/note.txt`, {
        token,
        raw: `note ${i} of ${id}`,
        headers: { "content-type": "application/octet-stream" },
      });
      expect(put.status, `PUT a file into ${id}: ${await put.clone().text()}`).toBe(204);
    }
    // Interleaved: a call sent to the wrong worker finds no such session there.
    for (const [i, id] of ids.entries()) {
      const ran = await c.json<{ stdout: string; status: string }>(
        "POST",
        `/v1/sessions/${id}/commands`,
        200,
        { token, body: { command: ["cat", "note.txt"] } },
      );
      expect(ran, `command in ${id}`).toMatchObject({
        status: "completed",
        stdout: `note ${i} of ${id}`,
      });
      const back = await c.request("GET", `/v1/sessions/${id}/files/note.txt`, { token });
      expect(await back.text(), `download from ${id}`).toBe(`note ${i} of ${id}`);
    }
    // The kernel agrees: each holding worker has the session's processes in its uid range.
    for (const p of placed) {
      const node = c.workers.find((w) => w.spec.workerId === p.worker_id)!;
      expect(
        c.leftovers(node).processes.length,
        `processes of ${workerName(p.worker_id)}`,
      ).toBeGreaterThan(0);
    }
    for (const id of ids)
      expect((await c.request("DELETE", `/v1/sessions/${id}`, { token })).status, id).toBe(204);
  });

  it("loses nothing when the API node restarts with work queued and running", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await submit(`restart-${i % 3}`, sleeper(2, `a${i}`)));
    const before = await rows(ids);
    expect(
      before.filter((r) => !isFinal(r.status)).length,
      `still to run at the restart: ${summary(before)}`,
    ).toBeGreaterThan(0);
    const ended = await c.stop(c.api, "SIGTERM", 30_000);
    expect(ended.forced, "the API node did not stop within 30 s of SIGTERM").toBe(false);
    await c.restart(c.api);
    const results = await finals(ids);
    ids.forEach((id, i) =>
      expect(results.get(id), `execution ${i} across the restart`).toMatchObject({
        status: "completed",
        stdout: `a${i}\n`,
      }),
    );
  });

  it("drains a worker on SIGTERM: its run completes, it takes no new work, it leaves gone", async () => {
    const long = await submit("drain", sleeper(4, "drained"));
    let holder: LocalNode | undefined;
    await c.until(
      "the long run to start on a worker",
      async () => {
        const [r] = await rows([long]);
        holder = c.workers.find((w) => r?.status === "running" && w.spec.workerId === r.worker_id);
        return holder !== undefined;
      },
      30_000,
      async () => summary(await rows([long])),
    );
    const target = holder!;
    const targetId = target.spec.workerId!;
    target.child.kill("SIGTERM");
    await c.until(
      `${target.spec.name} to be listed draining or gone after SIGTERM`,
      async () => ["draining", "gone"].includes((await c.viewOf(target))?.state ?? ""),
      15_000,
      async () => JSON.stringify(await c.viewOf(target)),
    );
    const after: string[] = [];
    for (let i = 0; i < 3; i++) after.push(await submit(`after-${i}`, sleeper(0.2, `n${i}`)));
    const results = await finals([long, ...after]);
    expect(results.get(long), "the run the drained worker held").toMatchObject({
      status: "completed",
      stdout: "drained\n",
    });
    const [longRow] = await rows([long]);
    expect(workerName(longRow!.worker_id), "the drained run stayed on its worker").toBe(
      workerName(targetId),
    );
    for (const r of await rows(after)) {
      expect(r.worker_id, `new work went to the draining worker: ${summary([r])}`).not.toBe(
        targetId,
      );
      expect(results.get(r.id)?.status, r.id).toBe("completed");
    }
    const exit = await Promise.race([
      target.exit,
      new Promise<"late">((r) => setTimeout(() => r("late"), 60_000)),
    ]);
    expect(exit, `${target.spec.name} did not exit within 60 s of SIGTERM`).not.toBe("late");
    expect(exit, `${target.spec.name}'s exit`).toMatchObject({ code: 0 });
    await c.until(
      `${target.spec.name} to be listed gone`,
      async () => (await c.viewOf(target))?.state === "gone",
      15_000,
      async () => JSON.stringify(await c.viewOf(target)),
    );
    expect(c.leftovers(target, target.pid), "what the drained worker left").toEqual({
      processes: [],
      cgroups: [],
    });
    await c.restart(target); // the next test needs two live workers again
  });

  it("loses nothing and leaves nothing running when a worker is SIGKILLed mid-run", async () => {
    const victim = c.workers[0]!;
    const victimId = victim.spec.workerId!;
    const key = await c.json<{ token: string }>("POST", "/api/sandbox/keys", 201, {
      body: { name: "doomed", userId: "doomed", scopes: ["sessions"] },
    });
    // A session on the victim, to see it reported ended (placement alternates by room).
    let doomed: string | undefined;
    const made: string[] = [];
    // At most CAP: a user's live sessions count against maxSandboxesPerUser.
    for (let i = 0; i < CAP && !doomed; i++) {
      const id = await newSession(key.token);
      made.push(id);
      const [row] = await c.sql<{ worker_id: string }>(
        "SELECT worker_id FROM sessions WHERE id = $1",
        [id],
      );
      if (row?.worker_id === victimId) doomed = id;
    }
    expect(doomed, `no session was placed on ${victim.spec.name} in ${made.length}`).toBeDefined();

    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await submit(`kill-${i}`, sleeper(8, "done")));
    await c.until(
      `a run to be running on ${victim.spec.name} with its sandbox up`,
      async () =>
        (await rows(ids)).some((r) => r.status === "running" && r.worker_id === victimId) &&
        programsOn(victim) > 0,
      30_000,
      async () => summary(await rows(ids)),
    );
    const onVictim = (await rows(ids))
      .filter((r) => r.status === "running" && r.worker_id === victimId)
      .map((r) => r.id);
    const deadPid = victim.pid;
    await c.kill9(victim);

    await c.until(
      `${victim.spec.name} to be declared gone after SIGKILL`,
      async () => (await c.viewOf(victim))?.state === "gone",
      20_000,
      async () => JSON.stringify(await c.viewOf(victim)),
    );
    const results = await finals(ids, 120_000);
    for (const id of onVictim) {
      const r = results.get(id)!;
      const [row] = await rows([id]);
      const where = `${id} was running on ${victim.spec.name}: ${JSON.stringify(r)} ${summary([row!])}`;
      expect(["completed", "error"], where).toContain(r.status);
      if (r.status === "error") {
        expect(r.error?.retryable, `a lost run must end retryable: ${where}`).toBe(true);
      } else {
        expect(r.stdout, where).toBe("done\n");
        expect(row!.worker_id, `completed by the dead worker? ${where}`).not.toBe(victimId);
        expect(row!.attempt, `a retried run counts its attempts: ${where}`).toBeGreaterThan(1);
      }
    }
    for (const id of ids.filter((i) => !onVictim.includes(i)))
      expect(results.get(id)?.status, `${id} ran elsewhere`).toBe("completed");
    const stuck = await c.sql<Row>(
      "SELECT id, user_id, status, worker_id, attempt FROM executions WHERE worker_id = $1 AND status IN ('running', 'queued')",
      [victimId],
    );
    expect(summary(stuck), "executions still held by the dead worker").toBe("");

    const [session] = await c.sql<{ ended_at: string | null; end_reason: string | null }>(
      "SELECT ended_at, end_reason FROM sessions WHERE id = $1",
      [doomed],
    );
    expect(
      session?.ended_at,
      `session ${doomed} of the dead worker: ${JSON.stringify(session)}`,
    ).not.toBeNull();
    const seen = await c.request("GET", `/v1/sessions/${doomed}`, { token: key.token });
    const seenBody = await seen.text();
    if (seen.status === 200)
      expect(JSON.parse(seenBody), `GET of a dead worker's session: ${seenBody}`).not.toMatchObject(
        { status: "running" },
      );
    else expect([404, 410], `GET of a dead worker's session: ${seenBody}`).toContain(seen.status);

    // The launcher takes its sandboxes along; the next start in its world clears its cgroups.
    await c.until(
      `${victim.spec.name}'s sandbox processes to exit`,
      async () => c.leftovers(victim).processes.length === 0,
      20_000,
      async () => JSON.stringify(c.leftovers(victim).processes),
    );
    const successor = await c.restart(victim);
    expect(c.leftovers(successor, deadPid).cgroups, "the dead worker's cgroups").toEqual([]);
    for (const id of made.filter((m) => m !== doomed))
      await c.request("DELETE", `/v1/sessions/${id}`, { token: key.token });
  });
});
