/**
 * A Warden killed mid-run leaves a cgroup, a mount, a workspace, a uid lease
 * and its sessions' preview sockets; the next start clears them.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { SandboxHost } from "../../src/sandbox/host.js";
import { cgroupDirsOf, expectNothingLeft, processesOfUid } from "../helpers/sandbox.js";
import { createKey, startServer } from "../helpers/server.js";

// A world of its own (run dir, cgroup parent, uid range), so that no other
// test's janitor can clean up the crash before this test's does.
const isolatedEnv = {
  WARDEN_RUN_DIR: "/run/warden-janitor-test",
  WARDEN_CGROUP_PARENT: "warden-janitor-test",
  WARDEN_UID_BASE: "760000",
  WARDEN_UID_COUNT: "100",
};
const config = loadConfig({ env: isolatedEnv });
const openHost = (): Promise<SandboxHost> =>
  SandboxHost.open({ config: config.sandbox, runDir: config.runDir });

function crashedWarden(): Promise<{ id: string; uid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, "../fixtures/crash-mid-run.mjs")],
      {
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, ...isolatedEnv },
      },
    );
    let buffer = "";
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString();
      const line = buffer.split("\n")[0];
      if (!buffer.includes("\n") || !line) return;
      child.kill("SIGKILL");
      child.on("close", () => resolve(JSON.parse(line) as { id: string; uid: number }));
    });
    child.on("error", reject);
    setTimeout(() => reject(new Error("fixture did not start a sandbox")), 20_000).unref();
  });
}

describe("janitor", () => {
  it("removes what a crashed Warden left, its warm pool's boxes too, and only that", async () => {
    const host = await openHost();
    // A live neighbour's box must survive the janitor.
    const neighbour = await host.prepare({ diskMb: 1 });
    const box = await crashedWarden();
    expect(cgroupDirsOf(host, box.id).length).toBeGreaterThan(0);
    // Workspaces live in their helpers' mount namespaces, never in the host's table.
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(box.id);
    expect(existsSync(join(host.runDir.uids, String(box.uid)))).toBe(true);
    const leases = readdirSync(host.runDir.uids);
    expect(leases.length, "the run's box, a pooled box and the neighbour").toBeGreaterThanOrEqual(
      3,
    );

    const restarted = await openHost();
    expect(restarted.janitorReport.cgroups).toBeGreaterThanOrEqual(2);
    expect(restarted.janitorReport.leases).toBeGreaterThanOrEqual(2);
    await expectNothingLeft(host, box);
    // Every uid of the range: only the neighbour's lease is left, and no process at all.
    expect(readdirSync(host.runDir.uids)).toEqual([String(neighbour.uid)]);
    const base = Number(isolatedEnv.WARDEN_UID_BASE);
    const inRange = (uid: number): boolean =>
      uid >= base && uid < base + Number(isolatedEnv.WARDEN_UID_COUNT);
    expect(processesOfUid(inRange), "processes of the uid range").toEqual([]);

    expect(existsSync(join(host.runDir.uids, String(neighbour.uid)))).toBe(true);
    expect(existsSync(join(host.runDir.boxes, neighbour.id))).toBe(true);
    await neighbour.destroy();
    await restarted.close();
    await host.close();
  });

  it("removes the preview sockets of a `warden serve` killed with SIGKILL", async () => {
    const first = await startServer({ env: isolatedEnv });
    const token = await createKey(first, "janitor", "sessions", "ann");
    const created = await first.request("POST", "/v1/sessions", { token, body: {} });
    expect(created.status, `${await created.clone().text()}\n${first.logs.join("\n")}`).toBe(201);
    const owned = (): string[] =>
      readdirSync(join(config.runDir, "boxes")).filter(
        (n) => n.startsWith(`b${first.process.pid}-`) && n.endsWith("-preview"),
      );
    const sockets = owned();
    expect(sockets).toHaveLength(1);
    await first.stop("SIGKILL");
    // Nothing of the dead Warden removed it.
    expect(owned()).toEqual(sockets);

    const second = await startServer({ env: isolatedEnv, dataDir: first.dataDir });
    try {
      expect(owned()).toEqual([]);
      expect(second.logs.join("\n")).toMatch(/"sideFiles":1/);
    } finally {
      await second.stop();
    }
  });
});
