/**
 * Pause and resume on real sandboxes and the real cgroup freezer: a paused
 * session uses no CPU (read from its cgroup), keeps its state, refuses calls,
 * does not age, and leaves nothing behind when deleted or shut down.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { loadConfig } from "../../src/config/load.js";
import type { WardenError } from "../../src/errors.js";
import type { SandboxHost } from "../../src/sandbox/host.js";
import { SessionManager } from "../../src/sessions/manager.js";
import { SnapshotStore } from "../../src/sessions/snapshots.js";
import { expectNothingLeft, testHost } from "../helpers/sandbox.js";
import { eventually } from "../helpers/server.js";

const config = loadConfig({
  env: {},
  overrides: { maxSessionsPerUser: 2, "sessions.maxPausedPerUser": 2 },
});
const snapDir = mkdtempSync(join(tmpdir(), "warden-snaps-"));
let host: SandboxHost;
let manager: SessionManager;
const audit: string[] = [];

beforeAll(async () => {
  host = await testHost();
  manager = new SessionManager(config, host, silentLogger, {
    audit: (e) => audit.push(`${e.event}: ${e.message}`),
    snapshots: new SnapshotStore(snapDir, config.sessions),
  });
});
afterAll(async () => {
  await manager?.closeAll();
  rmSync(snapDir, { recursive: true, force: true });
});

const cpuOf = async (id: string): Promise<number> =>
  (await manager.monitor()).find((s) => s.id === id)!.cpuTimeMs;
const boxOf = (m: SessionManager, id: string): { id: string; uid: number } => {
  const live = (
    m as unknown as { sessions: Map<string, { sandbox: { box: { id: string; uid: number } } }> }
  ).sessions.get(id)!;
  return { id: live.sandbox.box.id, uid: live.sandbox.box.uid };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const refusal = (p: Promise<unknown>): Promise<WardenError> =>
  p.then(
    () => {
      throw new Error("expected a refusal");
    },
    (e: unknown) => e as WardenError,
  );

/** A busy loop that writes how far it got to /workspace/count every 200k turns. */
const LOOP =
  "python3 -c \"i=0\nwhile True:\n i+=1\n if i%200000==0: open('count','w').write(str(i))\"";

describe("pause and resume", () => {
  it("freezes a busy session (no CPU from its cgroup), refuses calls, and resumes with its state", async () => {
    const s = await manager.create("ann");
    await manager.run(s.id, "ann", { code: "x = 41" });
    manager.startBackground(s.id, "ann", { command: LOOP });
    // Running for a while, and far enough to have written its count (the Python
    // context's own start alone can use 300 ms of CPU).
    await eventually(
      async () =>
        (await cpuOf(s.id)) > 300 &&
        (await manager.readFile(s.id, "ann", "count").then(
          () => true,
          () => false,
        )),
    );

    const paused = await manager.pause(s.id, "ann");
    expect(paused).toMatchObject({ state: "paused", status: "running" });
    expect(paused.pausedAt).not.toBeNull();
    // The kernel said FROZEN before pause returned: from here on nothing in the cgroup runs.
    const cpu1 = await cpuOf(s.id);
    await sleep(1500);
    const cpu2 = await cpuOf(s.id);
    expect(cpu2 - cpu1, "CPU used while paused (ms)").toBeLessThanOrEqual(2);

    for (const call of [
      manager.run(s.id, "ann", { code: "1" }),
      manager.command(s.id, "ann", { command: "true" }),
      manager.readFile(s.id, "ann", "count"),
      manager.writeFile(s.id, "ann", "f", Buffer.from("x")),
      manager.listFiles(s.id, "ann", "."),
      manager.openPort(s.id, "ann", 8000),
      Promise.resolve().then(() => manager.startBackground(s.id, "ann", { command: "true" })),
    ]) {
      const e = await refusal(call);
      expect(e.code).toBe("SESSION_PAUSED");
      expect(e.httpStatus).toBe(409);
      expect(e.message).toContain(`/v1/sessions/${s.id}/resume`);
    }
    // Its background command is still there, frozen, not ended.
    expect(manager.listBackground(s.id, "ann")[0]?.status).toBe("running");

    const resumed = await manager.resume(s.id, "ann");
    expect(resumed).toMatchObject({ state: "running", pausedAt: null });
    const cell = await manager.run(s.id, "ann", { code: "x + 1" });
    expect(cell.results[0]?.data["text/plain"]).toBe("42");
    // The loop goes on: its count and the cgroup's CPU both grow again.
    const count = async () => Number((await manager.readFile(s.id, "ann", "count")).toString());
    const before = await count();
    await eventually(async () => (await count()) > before);
    expect(await cpuOf(s.id)).toBeGreaterThan(cpu2);
    const box = boxOf(manager, s.id);
    await manager.destroy(s.id, "ann", "test");
    await expectNothingLeft(host, box);
  });

  it("stops the TTL clock and the idle timeout while paused", async () => {
    const s = await manager.create("bob", { timeout: 3, idleTimeout: 2 });
    await manager.pause(s.id, "bob");
    await sleep(4000);
    // Past both its TTL and its idle timeout in wall time, and still there.
    const info = manager.get(s.id, "bob");
    expect(info.state).toBe("paused");
    // Its end moves with the clock while paused: still about 3 s ahead.
    expect(Date.parse(info.expiresAt) - Date.now()).toBeGreaterThan(1500);
    await manager.resume(s.id, "bob");
    expect((await manager.command(s.id, "bob", { command: "echo up" })).stdout).toBe("up\n");
    // Running again, its TTL runs out.
    await eventually(async () => manager.list("bob").every((x) => x.id !== s.id), 15_000);
  });

  it("does not count paused sessions as running, but bounds how many one user keeps paused", async () => {
    const a = await manager.create("cy");
    const b = await manager.create("cy");
    await expect(manager.create("cy")).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    await manager.pause(a.id, "cy");
    // One is paused: it runs nothing, so another may start.
    const c = await manager.create("cy");
    await manager.pause(b.id, "cy");
    await expect(manager.pause(c.id, "cy")).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    const d = await manager.create("cy");
    // Two run (c, d): resuming a third would pass maxSessionsPerUser.
    await expect(manager.resume(a.id, "cy")).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    for (const x of [a, b, c, d]) await manager.destroy(x.id, "cy", "test");
  });

  it("counts a paused session as running while a snapshot of it thaws it", async () => {
    const a = await manager.create("eve");
    // Big enough that taking its snapshot lasts a while (~65 MB/s here).
    await manager.command(a.id, "eve", { command: "head -c 200000000 /dev/urandom > big.bin" });
    await manager.pause(a.id, "eve");
    const b = await manager.create("eve");
    const live = (
      manager as unknown as { sessions: Map<string, { pause: { thawed: boolean } }> }
    ).sessions.get(a.id)!;
    const snapshot = manager.snapshot(a.id, "eve");
    await eventually(async () => live.pause.thawed, 10_000);
    // a runs now (thawed) and b runs: a third would pass maxSessionsPerUser (2).
    await expect(manager.create("eve")).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    await snapshot;
    expect(manager.get(a.id, "eve").state).toBe("paused");
    // Frozen again: it no longer counts, and a second session may start.
    const c = await manager.create("eve");
    for (const x of [a, b, c]) await manager.destroy(x.id, "eve", "test");
  }, 120_000);

  it("deletes a paused session, and shuts down with paused ones, leaving nothing", async () => {
    const own = new SessionManager(config, host, silentLogger, { audit: () => undefined });
    const s = await own.create("dee");
    own.startBackground(s.id, "dee", { command: LOOP });
    await own.pause(s.id, "dee");
    const box = boxOf(own, s.id);
    await own.destroy(s.id, "dee", "test");
    await expectNothingLeft(host, box);

    const t = await own.create("dee");
    own.startBackground(t.id, "dee", { command: "sleep 1000 & sleep 1000" });
    await own.pause(t.id, "dee");
    const other = boxOf(own, t.id);
    await own.closeAll();
    await expectNothingLeft(host, other);
  });
});
