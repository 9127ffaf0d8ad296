/**
 * A snapshot's archive is made by the session's agent, which user code can
 * take over (test/attacks/programs/hijack-agent.cjs). A taken-over agent that
 * answers a snapshot with an archive that climbs out, names absolute paths,
 * links out and writes through the link, holds a device, or never ends must
 * be refused by the host as it arrives: nothing is kept on disk, Warden's
 * memory stays bounded, only that session ends, and others go on.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { loadConfig } from "../../src/config/load.js";
import type { WardenError } from "../../src/errors.js";
import { SandboxHost } from "../../src/sandbox/host.js";
import { SessionManager } from "../../src/sessions/manager.js";
import { SnapshotStore } from "../../src/sessions/snapshots.js";
import { expectNothingLeft, registry } from "../helpers/sandbox.js";
import { answerNext, hijackedSession } from "../helpers/hijack.js";
import { eventually } from "../helpers/server.js";
import { tar, type TarMember } from "../helpers/tar.js";

const MiB = 1024 * 1024;
const config = loadConfig({
  env: {},
  overrides: {
    maxSessionsPerUser: 50,
    "sessions.maxSnapshotMb": 4,
    runDir: "/run/warden-h-snapshot",
    "sandbox.uidBase": 768_000,
  },
});
const snapDir = mkdtempSync(join(tmpdir(), "warden-snap-attacks-"));
let host: SandboxHost;
let manager: SessionManager;
const audit: string[] = [];
let bystander: string;

beforeAll(async () => {
  host = await SandboxHost.open({
    config: config.sandbox,
    runDir: config.runDir,
    privateFiles: registry.privateFiles(),
  });
  manager = new SessionManager(config, host, silentLogger, {
    audit: (e) => audit.push(`${e.event}: ${e.message}`),
    snapshots: new SnapshotStore(snapDir, config.sessions),
  });
  bystander = (await manager.create("bob")).id;
  await manager.command(bystander, "bob", { command: "echo mine > note.txt" });
});
afterAll(async () => {
  await manager?.closeAll();
  await host?.close();
  rmSync(snapDir, { recursive: true, force: true });
});

/** A session whose agent answers the next snapshot request with `answer` (JS, `id` in scope). */
async function forging(answer: string) {
  const s = await hijackedSession(
    manager,
    "eve",
    answerNext('req.op === "snapshot"', answer, true),
  );
  await s.attack();
  return { id: s.id, box: s.box };
}

/** The agent's answer: `archive` as data pieces, then the snapshot's end. */
function sends(archive: Buffer): string {
  return `
    const data = Buffer.from(${JSON.stringify(archive.toString("base64"))}, "base64");
    for (let at = 0; at < data.length; at += 65536)
      write({ id, type: "data", data: data.subarray(at, at + 65536).toString("base64") });
    write({ id, type: "snapshot", skipped: 0 });`;
}

async function refusedSnapshot(answer: string): Promise<{ error: WardenError; ended: string }> {
  const s = await forging(answer);
  const error = await manager.snapshot(s.id, "eve").then(
    () => {
      throw new Error("the forged snapshot was kept");
    },
    (e: unknown) => e as WardenError,
  );
  await eventually(async () => manager.list("eve").every((x) => x.id !== s.id), 30_000);
  const ended = audit.find((a) => a.startsWith(`session_ended: session ${s.id}`)) ?? "";
  // Nothing of it on disk, not even a partial archive; nothing of the session on the host.
  expect(readdirSync(snapDir)).toEqual([]);
  await expectNothingLeft(host, s.box);
  const kept = await manager.command(bystander, "bob", { command: "cat note.txt" });
  expect(kept.stdout).toBe("mine\n");
  return { error, ended };
}

describe("a taken-over agent's snapshot", () => {
  const hostile: [string, TarMember[], RegExp][] = [
    [
      "climbs out with ../",
      [{ name: "../../../etc/cron.d/x", content: "* * * * * root sh" }],
      /'\.\.'/,
    ],
    [
      "names an absolute path",
      [{ name: "/etc/passwd", content: "root::0:0::/:/bin/sh" }],
      /absolute/,
    ],
    [
      "links out and writes through the link",
      [
        { name: "etc", type: "2", linkname: "/etc" },
        { name: "etc/passwd", content: "x" },
      ],
      /link target: absolute/,
    ],
    ["holds a device", [{ name: "sda", type: "4" }], /entry type '4'/],
    [
      "holds a hard link to a host file",
      [{ name: "h", type: "1", linkname: "/etc/shadow" }],
      /entry type '1'/,
    ],
  ];
  for (const [what, members, why] of hostile)
    it(`is refused when it ${what}`, async () => {
      const { error, ended } = await refusedSnapshot(sends(tar(members)));
      expect(error.message).toMatch(/agent broke the protocol/);
      expect(ended).toMatch(why);
    });

  it("is cut at sessions.maxSnapshotMb when its bytes never end; memory stays bounded", async () => {
    // An archive whose one file claims 1 GiB, then zeros, as fast as the pipe takes them.
    const head = tar([{ name: "big", size: 1 << 30 }], false).subarray(0, 512);
    const flood = `
      write({ id, type: "data", data: ${JSON.stringify(head.toString("base64"))} });
      const piece = Buffer.alloc(192 * 1024).toString("base64");
      let i = 0;
      const pump = () => { while (i++ < 100000) if (!process.stdout.write(JSON.stringify({ id, type: "data", data: piece }) + "\\n")) return process.stdout.once("drain", pump); };
      pump();`;
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const { ended } = await refusedSnapshot(flood).finally(() => clearInterval(timer));
    expect(ended).toMatch(/more than 4194304 bytes/);
    expect(peak - before).toBeLessThan(64 * MiB);
  });

  it("is refused when it ends before its archive does", async () => {
    const cut = tar([{ name: "a", content: "x".repeat(2000) }]).subarray(0, 1024);
    const { error } = await refusedSnapshot(sends(cut));
    expect(error.message).toMatch(/cut short|protocol/);
  });
});
