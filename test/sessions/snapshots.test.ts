/**
 * Snapshots on real sandboxes: a workspace saved and restored into a new
 * session, its packages listed, the size limit kept with nothing left on
 * disk, a paused session released into a snapshot; and file watches.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { loadConfig } from "../../src/config/load.js";
import type { SandboxHost } from "../../src/sandbox/host.js";
import { SessionManager } from "../../src/sessions/manager.js";
import { SnapshotStore } from "../../src/sessions/snapshots.js";
import type { WatchEvent } from "../../src/sessions/watch.js";
import { expectNothingLeft, testHost } from "../helpers/sandbox.js";
import { eventually } from "../helpers/server.js";

const config = loadConfig({
  env: {},
  overrides: {
    maxSessionsPerUser: 10,
    "sessions.maxSnapshotMb": 2,
    "sessions.maxSnapshotsPerUser": 5,
    "sessions.pausedSnapshotAfter": 1,
    "sessions.maxWatches": 2,
  },
});
const snapDir = mkdtempSync(join(tmpdir(), "warden-snaps-"));
let host: SandboxHost;
let manager: SessionManager;
let store: SnapshotStore;

beforeAll(async () => {
  host = await testHost();
  store = new SnapshotStore(snapDir, config.sessions);
  manager = new SessionManager(config, host, silentLogger, {
    audit: () => undefined,
    snapshots: store,
  });
});
afterAll(async () => {
  await manager?.closeAll();
  rmSync(snapDir, { recursive: true, force: true });
});

const sh = async (id: string, user: string, command: string): Promise<string> => {
  const r = await manager.command(id, user, { command });
  expect(r.status, r.stderr).toBe("completed");
  return r.stdout;
};

describe("snapshots", () => {
  it("saves a workspace with its packages; a new session from it sees the files, not the old state", async () => {
    const s = await manager.create("ann", { language: "python" });
    await sh(
      s.id,
      "ann",
      [
        "mkdir -p data/deep && printf 'hello' > data/deep/a.txt && chmod 750 data",
        `printf '%s' "$(head -c 300 /dev/zero | tr '\\0' n)" > data/long-content`,
        `mkdir -p "$(printf 'd%.0s' $(seq 1 60))/$(printf 'e%.0s' $(seq 1 60))" && touch "$(printf 'd%.0s' $(seq 1 60))/$(printf 'e%.0s' $(seq 1 60))/f"`,
        "ln -s data/deep/a.txt inside-link && ln -s /etc/passwd out-link && ln -s ../.. up-link && mkfifo pipe",
        // A venv's installed package, as pip leaves it, and an npm package.
        "mkdir -p .venv/lib/python3.11/site-packages/pkg-1.2.dist-info && touch .venv/pyvenv.cfg",
        "printf 'Metadata-Version: 2.1\\nName: pkg\\nVersion: 1.2\\n' > .venv/lib/python3.11/site-packages/pkg-1.2.dist-info/METADATA",
        'mkdir -p node_modules/@sc/lib && echo \'{"name":"@sc/lib","version":"0.1.0"}\' > node_modules/@sc/lib/package.json',
      ].join(" && "),
    );
    await manager.run(s.id, "ann", { code: "secret = 7" });
    const snap = await manager.snapshot(s.id, "ann");
    // Skipped: the three links above that leave the workspace, and the session venv's three
    // links to the system's python (the venv's own setup makes them again on restore).
    expect(snap).toMatchObject({ userId: "ann", sessionId: s.id, reason: "requested", skipped: 6 });
    expect(snap.packages).toEqual(
      expect.arrayContaining([
        { manager: "pip", name: "pkg", version: "1.2" },
        { manager: "npm", name: "@sc/lib", version: "0.1.0" },
      ]),
    );
    expect(store.list("ann").map((x) => x.id)).toContain(snap.id);
    expect(() => store.get(snap.id, "bob")).toThrow(/not found/);
    expect(store.get(snap.id, "bob", true).id).toBe(snap.id);

    // Someone else cannot start from it.
    await expect(manager.create("bob", { snapshot: snap.id })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    const t = await manager.create("ann", { snapshot: snap.id });
    expect(
      await sh(t.id, "ann", "cat data/deep/a.txt; readlink inside-link; cat inside-link"),
    ).toBe("hellodata/deep/a.txt\nhello");
    expect(await sh(t.id, "ann", "stat -c %a data; ls -A | sort | tr '\\n' ' '")).toBe(
      `750\n${[".venv", "data", "d".repeat(60), "inside-link", "node_modules", "output"].sort().join(" ")} `,
    );
    expect(await sh(t.id, "ann", `ls "${"d".repeat(60)}/${"e".repeat(60)}"`)).toBe("f\n");
    // Code contexts start anew.
    const cell = await manager.run(t.id, "ann", { code: "secret" });
    expect(cell.error?.name).toBe("NameError");
    await manager.destroy(s.id, "ann", "test");
    await manager.destroy(t.id, "ann", "test");
    store.delete(snap.id, "ann");
    expect(readdirSync(snapDir)).toEqual([]);
  });

  it("refuses a workspace over sessions.maxSnapshotMb, keeping no partial file; the session goes on", async () => {
    const s = await manager.create("ann");
    await sh(s.id, "ann", "head -c 3000000 /dev/urandom > big.bin");
    await expect(manager.snapshot(s.id, "ann")).rejects.toMatchObject({
      code: "QUOTA_EXCEEDED",
      message: expect.stringContaining("sessions.maxSnapshotMb") as unknown,
    });
    expect(readdirSync(snapDir)).toEqual([]);
    expect(await sh(s.id, "ann", "echo alive")).toBe("alive\n");
    await manager.destroy(s.id, "ann", "test");
  });

  it("snapshots and releases a session paused past sessions.pausedSnapshotAfter", async () => {
    const s = await manager.create("cy");
    await sh(s.id, "cy", "echo kept > note.txt");
    const box = (
      manager as unknown as {
        sessions: Map<string, { sandbox: { box: { id: string; uid: number } } }>;
      }
    ).sessions.get(s.id)!.sandbox.box;
    await manager.pause(s.id, "cy");
    await eventually(async () => manager.get(s.id, "cy").state === "released", 30_000);
    const info = manager.get(s.id, "cy");
    expect(info).toMatchObject({ status: "ended", state: "released" });
    expect(info.snapshotId).toMatch(/^snap_/);
    expect(store.get(info.snapshotId!, "cy").reason).toBe("paused");
    // "released" is published as the teardown starts; wait for it to finish.
    await eventually(() =>
      expectNothingLeft(host, { id: box.id, uid: box.uid }).then(
        () => true,
        () => false,
      ),
    );
    // Calls say where the workspace went.
    await expect(manager.command(s.id, "cy", { command: "true" })).rejects.toThrow(
      info.snapshotId!,
    );
    const t = await manager.create("cy", { snapshot: info.snapshotId! });
    expect(await sh(t.id, "cy", "cat note.txt")).toBe("kept\n");
    await manager.destroy(t.id, "cy", "test");
    await manager.destroy(s.id, "cy", "test"); // forgets the released one
    expect(() => manager.get(s.id, "cy")).toThrow(/not found/);
  });
});

describe("watch", () => {
  it("streams created and modified files, refuses paths out of /workspace, and ends with the session", async () => {
    const s = await manager.create("dee");
    await sh(s.id, "dee", "mkdir -p sub && ln -s /etc out");
    const events: WatchEvent[] = [];
    let ended: Error | null | undefined;
    const stop = await manager.watch(
      s.id,
      "dee",
      { path: "/workspace", recursive: true },
      (e) => events.push(e),
      (e) => (ended = e),
    );
    await manager.writeFile(s.id, "dee", "sub/new.txt", Buffer.from("x"));
    await eventually(async () => events.some((e) => e.path === "sub/new.txt"));
    expect(events.find((e) => e.path === "sub/new.txt")).toMatchObject({ type: "file" });
    expect(["created", "modified"]).toContain(events.find((e) => e.path === "sub/new.txt")!.kind);
    await sh(s.id, "dee", "rm sub/new.txt");
    await eventually(async () =>
      events.some((e) => e.path === "sub/new.txt" && e.kind === "removed"),
    );

    for (const path of ["../etc", "/etc", "/workspace/../etc"])
      await expect(
        manager.watch(
          s.id,
          "dee",
          { path, recursive: false },
          () => undefined,
          () => undefined,
        ),
      ).rejects.toMatchObject({ code: "INVALID_REQUEST" });
    // A link out, resolved inside the sandbox.
    await expect(
      manager.watch(
        s.id,
        "dee",
        { path: "out", recursive: false },
        () => undefined,
        () => undefined,
      ),
    ).rejects.toThrow(/out of \/workspace/);
    // One more fits (maxWatches 2), the next does not.
    const second = await manager.watch(
      s.id,
      "dee",
      { path: "sub", recursive: false },
      () => undefined,
      () => undefined,
    );
    await expect(
      manager.watch(
        s.id,
        "dee",
        { path: "sub", recursive: false },
        () => undefined,
        () => undefined,
      ),
    ).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    second();
    stop();
    await eventually(async () => ended === null);
    const third = await manager.watch(
      s.id,
      "dee",
      { path: ".", recursive: false },
      () => undefined,
      (e) => (ended = e),
    );
    expect(third).toBeTypeOf("function");
    await manager.destroy(s.id, "dee", "test");
    await eventually(async () => ended instanceof Error);
    expect(existsSync(snapDir)).toBe(true);
  });
});
