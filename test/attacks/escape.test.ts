/**
 * Escape attacks: each program tries to reach beyond its sandbox — the host's
 * files, Warden's state, the network, the kernel, other sandboxes.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import type { SandboxHost } from "../../src/sandbox/host.js";
import {
  cgroupDirsOf,
  config,
  limits,
  processesOfUid,
  runCode as runIn,
  testHost,
} from "../helpers/sandbox.js";
import { skippedTiers, TIERS } from "../helpers/tiers.js";
import { EXPECT } from "./expect.js";
import { program } from "./program.js";

/** Host uid and command line of each pid (those that still exist). */
function describeProcesses(pids: number[]): Map<number, { ids: string; exe: string }> {
  const seen = new Map<number, { ids: string; exe: string }>();
  for (const pid of pids)
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      seen.set(pid, {
        ids: `${/^Uid:\s+(.*)$/m.exec(status)?.[1]} / ${/^Gid:\s+(.*)$/m.exec(status)?.[1]}`,
        // The binary, not argv: runsc re-executes itself as /proc/self/exe.
        exe: readlinkSync(`/proc/${pid}/exe`),
      });
    } catch {
      // exited while we looked
    }
  return seen;
}

/** The pids in the box's cgroups (every run's). */
function cgroupPids(host: SandboxHost, boxId: string): number[] {
  return cgroupDirsOf(host, boxId).flatMap((dir) => {
    try {
      return readFileSync(`${dir}/cgroup.procs`, "utf8").split("\n").filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

/**
 * Who runs the box's processes on the host, per tier (expect.ts):
 * namespaces — every one under the box's own uid; gvisor — runsc's gofer
 * and Sentry, in the box's cgroup, none under the box uid.
 */
const HOST_PROCESSES = {
  "box-uid": {
    pids: (_host: SandboxHost, box: { id: string; uid: number }) => processesOfUid(box.uid),
    check(seen: Map<number, { ids: string }>, box: { uid: number }) {
      const expected = Array(4).fill(box.uid).join("\t");
      for (const { ids } of seen.values()) expect(ids).toBe(`${expected} / ${expected}`);
    },
  },
  runsc: {
    pids: (host: SandboxHost, box: { id: string; uid: number }) => cgroupPids(host, box.id),
    check(seen: Map<number, { ids: string; exe: string }>, box: { uid: number }) {
      for (const { ids, exe } of seen.values()) {
        expect(exe).toMatch(/\/runsc$/);
        expect(ids.split(/\s+/)).not.toContain(String(box.uid));
      }
    },
  },
} as const;

skippedTiers("escape attacks");

describe.each(TIERS)("escape attacks [%s]", (isolation) => {
  const expected = EXPECT[isolation];
  const runCode = (...[language, code, options]: Parameters<typeof runIn>) =>
    runIn(language, code, { ...options, isolation });

  it("cannot read host secrets, Warden's state, /sys or the host's PID 1", async () => {
    const host = await testHost();
    const wardenPaths = [
      config.runDir,
      host.runDir.boxes,
      host.runDir.uids,
      process.cwd(),
      "/work",
      "/var/lib",
    ];
    const result = await runCode("python", program("read-host.py"), { args: wardenPaths });
    const seen = JSON.parse(result.stdout) as Record<string, unknown>;
    // The sandbox's own /home holds only E2B's `user`, a link to its workspace: never the host's homes.
    expect(seen["/home"]).toBe("listed: user");
    for (const path of [
      "/etc/shadow",
      "/root",
      "/sys/fs/cgroup",
      "/proc/1/root/etc/shadow",
      ...wardenPaths,
    ])
      expected.hostPath(path, seen[path]);
    // PID 1 is Warden's init, not the host's.
    const hostPid1 = readFileSync("/proc/1/cmdline", "utf8").split("\0")[0];
    expect(seen.pid1).toBe("/.warden/init");
    expect(seen.pid1).not.toBe(hostPid1);
    // Only its own processes exist, and nothing of Warden's descriptors leaked in.
    expect((seen.pids as number[]).every((p) => p < 10)).toBe(true);
    expect(seen.fds).toEqual([0, 1, 2, 3]); // 3 is the listing's own directory fd
    expect(seen.cgroup).toMatch(expected.ownCgroup);
  });

  it("cannot write outside /workspace and /tmp", async () => {
    const result = await runCode("python", program("write-outside.py"));
    const seen = JSON.parse(result.stdout) as Record<string, string>;
    expect(seen["/workspace/ok"]).toBe("written");
    expect(seen["/tmp/ok"]).toBe("written");
    for (const [path, outcome] of Object.entries(seen))
      if (!path.startsWith("/workspace") && !path.startsWith("/tmp"))
        expect(outcome, path).not.toBe("written");
    expect(readFileSync("/etc/passwd", "utf8")).not.toContain("owned");
  });

  it("has no network: only its own loopback, no route out, no DNS, not the host's loopback", async () => {
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const result = await runCode("python", program("net-probe.py"), { args: [String(port)] });
      const seen = JSON.parse(result.stdout) as Record<string, unknown>;
      expect(seen.interfaces).toEqual(["lo"]);
      // No IPv4 route at all, no IPv6 route off loopback: no outside address is reachable,
      // and the test proves it without sending a packet anywhere.
      expect(seen.ipv4_routes).toEqual([]);
      expect(seen.ipv6_routes_off_lo).toEqual([]);
      expect(seen.host_loopback).toBe("ConnectionRefusedError");
      expect(seen.dns).toBe("gaierror");
      expect(connections).toBe(0);
    } finally {
      server.close();
    }
  });

  it("every dangerous syscall is refused (or kept inside gVisor's own kernel)", async () => {
    const result = await runCode("c", program("syscalls.c"));
    expect(result.status).toBe("completed");
    const outcomes = new Map(
      result.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" ") as [string, string]),
    );
    expect(outcomes.size).toBeGreaterThan(30);
    for (const [name, outcome] of outcomes) expected.syscall(name, outcome);
  });

  it("a syscall through the i386 ABI is not executed", async () => {
    expected.foreignAbi(await runCode("c", program("i386-abi.c")));
  });

  it("a syscall through the x32 ABI is not executed", async () => {
    expected.foreignAbi(await runCode("c", program("x32-abi.c")));
  });

  it("cannot see the host's System V IPC objects (own IPC namespace)", async () => {
    const made = execFileSync("ipcmk", ["-M", "4096"]).toString();
    const id = /(\d+)/.exec(made)?.[1];
    try {
      const result = await runCode(
        "bash",
        "ipcs -m | awk 'NR>3 && $2 ~ /^[0-9]+$/ {print $2}' | wc -l; ipcs -m -i " +
          (id ?? "0") +
          " 2>&1 | head -1",
      );
      const [count, detail] = result.stdout.trim().split("\n");
      expect(count).toBe("0");
      expect(detail).toMatch(/invalid|not|error/i);
    } finally {
      if (id) execFileSync("ipcrm", ["-m", id]);
    }
  });

  it("runs unprivileged: own uid, no capabilities, no_new_privs, seccomp, no userns, no setuid", async () => {
    const result = await runCode("bash", program("identity.sh"));
    const out = result.stdout;
    expect(out).toContain("uid=1000 gid=1000 groups=1000");
    for (const cap of ["CapEff", "CapPrm", "CapBnd"])
      expect(out).toMatch(new RegExp(`${cap}:\\s+0000000000000000`));
    expect(out).toMatch(expected.status.noNewPrivs);
    expect(out).toMatch(expected.status.seccomp);
    expect(out).toContain("hostname=warden");
    expect(out).toMatch(expected.unshare);
    // Whatever the tier's kernel allows inside, root stays out of reach.
    expect(out).toContain("su: refused");
  });

  it("the sandbox's host processes are the tier's own: the box uid, or runsc (never the box uid)", async () => {
    const host = await testHost();
    const box = await host.prepare({ diskMb: 1, isolation });
    const who = HOST_PROCESSES[expected.hostProcesses];
    try {
      const seen = new Map<number, { ids: string; exe: string }>();
      const run = box.run({
        argv: ["/bin/sh", "-c", "sleep 0.5 & sleep 0.5; wait"],
        limits: limits(),
      });
      for (let i = 0; i < 8; i++) {
        for (const [pid, info] of describeProcesses(who.pids(host, box))) seen.set(pid, info);
        await new Promise((r) => setTimeout(r, 40));
      }
      expect((await run).status).toBe("completed");
      expect(seen.size).toBeGreaterThan(1);
      who.check(seen, box);
      expect(box.uid).toBeGreaterThanOrEqual(config.sandbox.uidBase);
      expect(box.uid).toBeLessThan(config.sandbox.uidBase + config.sandbox.uidCount);
    } finally {
      await box.destroy();
    }
  });

  it("cannot write to cgroupfs or mount one", async () => {
    const result = await runCode(
      "bash",
      [
        "echo 0 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null && echo WROTE || echo no-sysfs",
        "mkdir -p /tmp/cg && mount -t cgroup -o memory none /tmp/cg 2>/dev/null && echo MOUNTED || echo no-mount",
        "mount -t cgroup2 none /tmp/cg 2>/dev/null && echo MOUNTED2 || echo no-mount2",
      ].join("\n"),
    );
    expect(result.stdout).toBe("no-sysfs\nno-mount\nno-mount2\n");
  });

  it("kill -9 -1 hits only the sandbox: the host, Warden and a neighbour survive", async () => {
    const canary = spawn("/bin/sleep", ["30"], { stdio: "ignore" });
    try {
      const neighbour = runCode("bash", "sleep 2; echo neighbour alive");
      const result = await runCode("bash", "sleep 0.3; kill -9 -1; echo survived");
      expect(result.stdout).toBe("survived\n");
      expect((await neighbour).stdout).toBe("neighbour alive\n");
      expect(canary.exitCode).toBeNull();
      expect(canary.signalCode).toBeNull();
    } finally {
      canary.kill();
    }
  });

  it("two sandboxes cannot see or signal each other", async () => {
    const host = await testHost();
    const a = runCode(
      "python",
      "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(2)\nprint('A alive')",
    );
    await new Promise((r) => setTimeout(r, 500));
    const b = await runCode(
      "bash",
      [
        // find and shell globs, not ls: the 2022 runsc refuses coreutils' statx (DESIGN-18 §1.8).
        `find ${host.runDir.boxes} -maxdepth 0 2>&1 | head -1`,
        "for p in $(seq 1 300); do kill -9 $p 2>/dev/null && [ $p -gt 3 ] && echo killed $p; done",
        "for p in /proc/[0-9]*; do printf '%s ' \"${p#/proc/}\"; done",
      ].join("\n"),
    );
    expect(b.stdout).toMatch(/No such file or directory/);
    expect(b.stdout).not.toMatch(/killed/);
    const aResult = await a;
    expect(aResult).toMatchObject({ status: "completed" });
    expect(aResult.stdout).toContain("A alive");
    expect(aResult.box.uid).not.toBe(b.box.uid);
  });
});
