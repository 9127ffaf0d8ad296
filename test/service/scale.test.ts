/**
 * Many live sandboxes at once through `warden serve`: 100 sleepers from four
 * keys (four users) under a memory budget their limits do not fit. In `usage`
 * mode all of them run at once (the budget counts what they use, read from
 * the kernel), a real memory hog among them is still OOM-killed by its own
 * cgroup, and every sleeper ends cleanly with nothing left behind.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { config as defaults, KEEP_WARM_CGROUP } from "../helpers/sandbox.js";
import { createKey, eventually, startServer, type TestServer } from "../helpers/server.js";

const N = 100;
const USERS = 4;
const BUDGET_MB = 2000;
const LIMIT_MB = 256;
// Its own cgroup parent: the kernel's figure must be this server's sandboxes, not
// those of other tests running beside it.
const CGROUP_PARENT = "warden-scale-test";

let server: TestServer;
const tokens: string[] = [];

beforeAll(async () => {
  const lavish = { burst: 10_000, perMinute: 100_000, perHour: 1_000_000 };
  server = await startServer({
    config: {
      maxConcurrentSandboxes: N + 10,
      maxSandboxesPerUser: N / USERS + 2,
      memoryBudgetMB: BUDGET_MB,
      memoryBudgetMode: "usage",
      memoryAdmissionMB: 8,
      memoryPollMs: 250,
      defaults: { memoryMb: LIMIT_MB },
      sandbox: { cgroupParent: CGROUP_PARENT },
      server: { rateLimits: { perKey: lavish, perIp: lavish } },
    },
  });
  for (let u = 0; u < USERS; u++)
    tokens.push(await createKey(server, `sleepers-${u}`, "execute", `sleeper-${u}`));
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

interface Metrics {
  activeExecutions: number;
  memoryReservedMb: number;
  memoryBudgetMb: number;
  memoryBudgetMode: string;
  memoryUsedMb: number;
}
/** Processes of this server's sandboxes whose name passes `match`, from the kernel. */
function sandboxProcesses(match: (comm: string) => boolean): string[] {
  const inServer = `/${CGROUP_PARENT}/b${server.process.pid}-`;
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return (
          match(readFileSync(`/proc/${p}/comm`, "utf8").trim()) &&
          readFileSync(`/proc/${p}/cgroup`, "utf8").includes(inServer) &&
          !KEEP_WARM_CGROUP.test(readFileSync(`/proc/${p}/cgroup`, "utf8"))
        );
      } catch {
        return false;
      }
    });
}
const isSleeper = (comm: string): boolean => comm === "sleep" || comm.startsWith("python");

const metrics = async (): Promise<Metrics> =>
  (await server.request("GET", "/api/sandbox/metrics")).json() as Promise<Metrics>;

describe("scale", () => {
  it(`${N} sleepers run at once where reserved limits fit ${Math.floor(BUDGET_MB / LIMIT_MB)}; a hog is still OOM-killed; all end cleanly`, async () => {
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const body =
        i % 2 === 0
          ? { language: "bash", code: "sleep 600" }
          : { language: "python", code: "import time\ntime.sleep(600)" };
      const r = await server.request("POST", "/v1/executions", {
        body: { ...body, timeout: 700, wait: false },
        token: tokens[i % USERS],
      });
      expect(r.status).toBe(202);
      ids.push(((await r.json()) as { id: string }).id);
    }
    // All N live at once: reserve mode would hold 256 MiB each and stop at 7.
    let seen: Metrics | undefined;
    await eventually(async () => {
      seen = await metrics();
      return seen.activeExecutions === N;
    }, 180_000);
    // Admitted is not yet running: the programs themselves are all there, in the kernel.
    await eventually(async () => sandboxProcesses(isSleeper).length === N, 180_000);
    expect(seen!.memoryBudgetMode).toBe("usage");
    expect(N * LIMIT_MB).toBeGreaterThan(BUDGET_MB);
    // The kernel's figure is read and counted, and it stays within the budget.
    await eventually(async () => (await metrics()).memoryUsedMb > 0);
    const during = await metrics();
    expect(during.memoryReservedMb).toBeLessThanOrEqual(BUDGET_MB);

    // Overcommit does not loosen a sandbox's own limit: a hog is OOM-killed in its box.
    const hog = await server.request("POST", "/v1/executions", {
      body: {
        language: "python",
        code: "b = []\nwhile True:\n    b.append(bytearray(16 << 20))",
        limits: { memoryMb: 64 },
        timeout: 60,
      },
      token: tokens[0],
    });
    expect(hog.status).toBe(200);
    expect(((await hog.json()) as { status: string }).status).toBe("memory_limit");
    expect((await metrics()).activeExecutions).toBe(N);
    expect(sandboxProcesses(isSleeper)).toHaveLength(N); // the OOM kill stayed in the hog's box
    expect((await server.request("GET", "/healthz")).status).toBe(200);

    for (const id of ids)
      expect((await server.request("POST", `/v1/executions/${id}/kill`)).status).toBe(200);
    await eventually(async () => (await metrics()).activeExecutions === 0, 120_000);
    for (const id of ids) {
      const r = (await (await server.request("GET", `/v1/executions/${id}`)).json()) as {
        status: string;
        error: unknown;
      };
      expect(r).toMatchObject({ status: "killed", error: null });
    }

    // Nothing of the sleepers remains: no box, no cgroup, no process.
    const owner = `b${server.process.pid}-`;
    await eventually(
      async () => readdirSync(`${defaults.runDir}/boxes`).every((b) => !b.startsWith(owner)),
      30_000,
    );
    const parent = `/sys/fs/cgroup/memory/${CGROUP_PARENT}`;
    if (existsSync(parent))
      expect(
        readdirSync(parent).filter((c) => c.startsWith(owner) && !KEEP_WARM_CGROUP.test(c)),
      ).toEqual([]);
    expect(sandboxProcesses(() => true)).toEqual([]);
  }, 600_000);
});
