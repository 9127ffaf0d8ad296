/**
 * The janitor's gVisor sweep against a fake runsc (a script that records how
 * it was called) and fake run, state and cgroup directories: a dead owner's
 * containers, state and lock files, bundles, control and egress socket dirs and foreign
 * cgroups go; a live owner's stay; runsc gets an empty environment and a
 * fixed argv, and a runsc that hangs is killed at the deadline.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fakeRoot } from "../helpers/fake-cgroupfs.js";
import { silentLogger } from "../../src/audit/logger.js";
import { CgroupV1Driver } from "../../src/sandbox/cgroups/v1.js";
import { CgroupV2Driver } from "../../src/sandbox/cgroups/v2.js";
import { runJanitor } from "../../src/sandbox/janitor.js";
import { runsc as callRunsc } from "../../src/sandbox/gvisor/runsc-args.js";
import { runOf, sweepGvisor } from "../../src/sandbox/janitor-gvisor.js";
import { ownerTag } from "../../src/sandbox/owner.js";
import { UidPool } from "../../src/sandbox/uid-pool.js";

// pid of this process with start ticks it never had: an owner that is dead.
const dead = `b${process.pid}-1`;
const live = ownerTag();

/** A runsc that logs argv and env, lists the ids in $LIST and deletes state files. */
function fakeRunsc(dir: string, list: string[], body = ""): { path: string; log: string } {
  const path = join(dir, "runsc");
  const log = join(dir, "calls.log");
  writeFileSync(
    path,
    `#!/bin/sh
{ printf '%s|' "$@"; printf 'env=%s\\n' "$(env | tr '\\n' ' ')"; } >> ${log}
${body}
root=$2
case "$3" in
  list) printf '${list.join("\\n")}\\n' ;;
  delete) rm -f "$root/$5"_sandbox:* ;;
esac
`,
  );
  chmodSync(path, 0o755);
  return { path, log };
}

function world(): {
  root: string;
  runDir: string;
  state: string;
  cgroups: CgroupV1Driver;
  hierarchies: string[];
} {
  const root = fakeRoot();
  const runDir = join(root, "run");
  const state = join(runDir, "runsc");
  mkdirSync(state, { recursive: true });
  const driven = { memory: join(root, "cg", "memory"), pids: join(root, "cg", "pids") };
  const hierarchies = [
    ...Object.values(driven),
    join(root, "cg", "blkio"),
    join(root, "cg", "systemd"),
  ];
  for (const h of hierarchies) mkdirSync(join(h, "warden"), { recursive: true });
  return {
    root,
    runDir,
    state,
    cgroups: new CgroupV1Driver(driven, "warden", 2, hierarchies),
    hierarchies,
  };
}

const isOrphan = (name: string): boolean => name.startsWith(`${dead}-`);

describe("gVisor janitor sweep", () => {
  it("names runs from state files, bundles and ids", () => {
    expect(runOf("b1-2-ab12-3_sandbox:b1-2-ab12-3.lock")).toBe("b1-2-ab12-3");
    expect(runOf("b1-2-ab12-3.state")).toBe("b1-2-ab12-3");
    expect(runOf("b1-2-ab12-3")).toBe("b1-2-ab12-3");
    expect(runOf("kvm1_sandbox:kvm1.lock")).toBeNull();
    expect(runOf("--force")).toBeNull();
  });

  it("deletes a dead owner's containers and files, keeps a live owner's", async () => {
    const w = world();
    const runs = { dead1: `${dead}-aa11-1`, dead2: `${dead}-aa11-2`, live: `${live}-bb22-1` };
    for (const id of Object.values(runs)) {
      writeFileSync(join(w.state, `${id}_sandbox:${id}.lock`), "");
      writeFileSync(join(w.state, `${id}_sandbox:${id}.state`), "{}");
      mkdirSync(join(w.runDir, "gvisor", id), { recursive: true });
      writeFileSync(join(w.runDir, "gvisor", id, "config.json"), "{}");
      for (const h of w.hierarchies) mkdirSync(join(h, "warden", id));
    }
    // A lock runsc itself no longer knows of (a run killed mid-way).
    writeFileSync(join(w.state, `${runs.dead2}_sandbox:${runs.dead2}.lock`), "");
    writeFileSync(join(w.state, "not-ours.lock"), "");
    const runsc = fakeRunsc(w.root, [runs.dead1, runs.live, "--root=/", "../x"]);

    const report = await sweepGvisor({
      runDir: w.runDir,
      runscPath: runsc.path,
      cgroups: w.cgroups,
      isOrphan,
    });

    expect(report.containers).toBe(2);
    expect(report.bundles).toBe(2);
    expect(report.foreignCgroups).toBe(2 * w.hierarchies.length);
    const calls = readFileSync(runsc.log, "utf8").trim().split("\n");
    expect(calls.map((c) => c.split("|env=")[0])).toEqual([
      `--root|${w.state}|list|-quiet`,
      `--root|${w.state}|delete|--force|${runs.dead1}`,
      `--root|${w.state}|delete|--force|${runs.dead2}`,
    ]);
    // Nothing of Warden's environment reaches runsc (sh adds PWD, SHLVL and _ itself).
    for (const call of calls) expect(call).not.toMatch(/PATH=|HOME=|WARDEN/);
    expect(readdirSync(w.state).sort()).toEqual(
      [
        `${runs.live}_sandbox:${runs.live}.lock`,
        `${runs.live}_sandbox:${runs.live}.state`,
        "not-ours.lock",
      ].sort(),
    );
    expect(readdirSync(join(w.runDir, "gvisor"))).toEqual([runs.live]);
    for (const h of w.hierarchies) expect(readdirSync(join(h, "warden")), h).toEqual([runs.live]);
  });

  it("without runsc (tier off or binary gone) still sweeps files and cgroups", async () => {
    const w = world();
    const id = `${dead}-cc33-1`;
    writeFileSync(join(w.state, `${id}_sandbox:${id}.lock`), "");
    mkdirSync(join(w.hierarchies[3]!, "warden", id));
    for (const runscPath of [null, join(w.root, "missing-runsc")]) {
      const report = await sweepGvisor({
        runDir: w.runDir,
        runscPath,
        cgroups: w.cgroups,
        isOrphan,
      });
      expect(report.containers).toBe(0);
    }
    expect(readdirSync(w.state)).toEqual([]);
    expect(existsSync(join(w.hierarchies[3]!, "warden", id))).toBe(false);
  });

  it("never spawns runsc when its root holds nothing of a dead owner", async () => {
    const w = world();
    const id = `${live}-dd44-1`;
    writeFileSync(join(w.state, `${id}_sandbox:${id}.state`), "{}");
    const runsc = fakeRunsc(w.root, [id]);
    await sweepGvisor({ runDir: w.runDir, runscPath: runsc.path, cgroups: w.cgroups, isOrphan });
    expect(existsSync(runsc.log)).toBe(false);
  });

  it("kills a runsc that hangs at the deadline", async () => {
    const w = world();
    const runsc = fakeRunsc(w.root, [], "exec sleep 30");
    const call = await callRunsc(
      { runscPath: runsc.path, globalArgs: [] },
      ["--root", w.state, "list", "-quiet"],
      200,
    );
    expect(call).toMatchObject({ timedOut: true, code: null });
  });

  it("on v2 sweeps runsc's files the same, and no cgroup beyond the unified one", async () => {
    const root = fakeRoot();
    const runDir = join(root, "run");
    const id = `${dead}-ee55-1`;
    mkdirSync(join(runDir, "runsc"), { recursive: true });
    writeFileSync(join(runDir, "runsc", `${id}_sandbox:${id}.lock`), "");
    const cgroups = new CgroupV2Driver(join(root, "cg"), "warden", ["memory", "pids"], 2);
    const report = await sweepGvisor({ runDir, runscPath: null, cgroups, isOrphan });
    expect(report).toEqual({ containers: 0, stateFiles: 1, bundles: 0, foreignCgroups: 0 });
  });
});

describe("janitor", () => {
  it("removes a dead owner's control sockets (<boxId>-ctl-<n>) and keeps a live owner's", async () => {
    const w = world();
    const boxes = join(w.runDir, "boxes");
    const uids = join(w.runDir, "uids");
    mkdirSync(boxes);
    const deadCtl = `${dead}-ff66-ctl-2`;
    const liveCtl = `${live}-ff77-ctl-1`;
    for (const name of [deadCtl, liveCtl, `${dead}-ff66-preview`])
      writeFileSync(join(boxes, name), "");
    // A uid range no process on this host uses.
    const pool = new UidPool(uids, 3_900_000_000, 10);
    await pool.init();
    const report = await runJanitor({
      runDir: {
        root: w.runDir,
        boxes,
        uids,
        etcRoot: join(w.runDir, "etc"),
        etc: "",
        libRoot: join(w.runDir, "lib"),
        lib: "",
      },
      cgroups: w.cgroups,
      uids: pool,
      logger: silentLogger,
      runscPath: null,
    });
    expect(report.sideFiles).toBe(2);
    expect(readdirSync(boxes)).toEqual([liveCtl]);
  });

  it("removes a dead owner's control and egress socket directories (<boxId>-ctl-<n>/, -net-<n>/)", async () => {
    const w = world();
    const boxes = join(w.runDir, "boxes");
    const uids = join(w.runDir, "uids");
    // What GvisorBox makes: `<boxId>-ctl-<n>/sock` and `<boxId>-net-<n>/<socket>`.
    const deadDirs = [`${dead}-ff66-ctl-2`, `${dead}-ff66-net-3`];
    const liveDirs = [`${live}-ff77-ctl-1`, `${live}-ff77-net-1`];
    for (const name of [...deadDirs, ...liveDirs]) {
      mkdirSync(join(boxes, name), { recursive: true });
      writeFileSync(join(boxes, name, "sock"), "");
    }
    const pool = new UidPool(uids, 3_900_000_000, 10);
    await pool.init();
    const report = await runJanitor({
      runDir: {
        root: w.runDir,
        boxes,
        uids,
        etcRoot: join(w.runDir, "etc"),
        etc: "",
        libRoot: join(w.runDir, "lib"),
        lib: "",
      },
      cgroups: w.cgroups,
      uids: pool,
      logger: silentLogger,
      runscPath: null,
    });
    expect(report.sideFiles).toBe(2);
    expect(readdirSync(boxes).sort()).toEqual([...liveDirs].sort());
  });
});
