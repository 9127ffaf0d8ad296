/**
 * The gVisor tier end to end, through SandboxHost with isolation "gvisor":
 * real runsc, real cgroups, hostile programs. Skipped, with the probe's
 * reason, on a host without the tier. Timings are printed, never asserted.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxHost } from "../../src/sandbox/host.js";
import { runtimeTemplate } from "../../src/runtimes/warm.js";
import type { SandboxBox } from "../../src/sandbox/box.js";
import type { GvisorProbe } from "../../src/sandbox/gvisor/probe.js";
import type { RunResult, SandboxSpec } from "../../src/sandbox/types.js";
import { cgroupDirsOf, config, expectNothingLeft, limits, registry } from "../helpers/sandbox.js";

const host = await SandboxHost.open({
  config: { ...config.sandbox, pool: { ...config.sandbox.pool, enabled: false } },
  runDir: config.runDir,
  privateFiles: registry.privateFiles(),
}).catch(() => null);
const probe: GvisorProbe | null = host ? await host.gvisor() : null;
const reason = !host
  ? "no sandbox host (not root?)"
  : probe?.available
    ? ""
    : `gvisor unavailable: ${probe?.reason}`;
const runscRoot = join(config.runDir, "runsc");

/** Host processes whose command line names `id` (runsc, its gofer and Sentry do). */
function processesNaming(id: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.includes(id) && !cmd.includes("vitest")) found.push(cmd.replace(/\0/g, " "));
    } catch {
      // gone while we looked
    }
  }
  return found;
}

/** Directories named after the box in every mounted v1 hierarchy (runsc may add some). */
function anyCgroupOf(id: string): string[] {
  const found: string[] = [];
  for (const hierarchy of readdirSync("/sys/fs/cgroup")) {
    const parent = join("/sys/fs/cgroup", hierarchy, host!.cgroupParent);
    if (!existsSync(parent)) continue;
    for (const name of readdirSync(parent)) if (name.startsWith(id)) found.push(join(parent, name));
  }
  return found;
}

async function expectGvisorNothingLeft(box: SandboxBox): Promise<void> {
  await expectNothingLeft(host!, box);
  expect(processesNaming(box.id), "runsc processes of the box").toEqual([]);
  const list = execFileSync("runsc", ["--root", runscRoot, "list", "-quiet"], { env: {} });
  expect(String(list).includes(box.id), "runsc list").toBe(false);
  const bundles = readdirSync(join(config.runDir, "gvisor")).filter((n) => n.startsWith(box.id));
  expect(bundles, "bundle dirs").toEqual([]);
  const state = readdirSync(runscRoot).filter((n) => n.includes(box.id));
  expect(state, "runsc state files").toEqual([]);
  expect(anyCgroupOf(box.id), "cgroups in any hierarchy").toEqual([]);
  const side = readdirSync(host!.runDir.boxes).filter((n) => n.startsWith(`${box.id}-`));
  expect(side, "control sockets").toEqual([]);
}

async function once(
  spec: Omit<SandboxSpec, "limits"> & { limits?: Parameters<typeof limits>[0] },
  files: { path: string; content: string }[] = [],
): Promise<RunResult> {
  const box = await host!.prepare({ diskMb: 16, files, isolation: "gvisor" });
  try {
    return await box.run({ ...spec, limits: limits(spec.limits) });
  } finally {
    await box.destroy();
    await expectGvisorNothingLeft(box);
  }
}

const sh = (script: string) => ["/bin/sh", "-c", script];

describe.skipIf(reason !== "")(`gVisor box ${reason}`, () => {
  afterAll(async () => {
    await host?.close();
  });

  beforeAll(() => {
    process.stderr.write(`gvisor probe: ${JSON.stringify(probe)}\n`);
  });

  it("runs python as uid 1000 with stdout, stderr and the exit code", async () => {
    const r = await once(
      {
        argv: [
          "/usr/bin/python3",
          "-c",
          "import os,sys; print(os.getuid(), os.getgid(), open('in.txt').read()); print('e', file=sys.stderr); sys.exit(7)",
        ],
      },
      [{ path: "in.txt", content: "given" }],
    );
    expect(r).toMatchObject({
      status: "failed",
      exitCode: 7,
      stdout: "1000 1000 given\n",
      stderr: "e\n",
    });
    expect(r.isolation).toBe("gvisor");
    expect(r.metrics.platform).toBe(probe!.platform);
  });

  it("compiles C in one run and runs it in the next: the workspace is shared", async () => {
    const box = await host!.prepare({
      diskMb: 32,
      isolation: "gvisor",
      files: [
        { path: "m.c", content: '#include <stdio.h>\nint main(){puts("built");return 4;}\n' },
      ],
    });
    try {
      const cc = await box.run({
        argv: ["/usr/bin/gcc", "-o", "m", "m.c"],
        limits: limits({ timeoutMs: 60_000 }),
      });
      expect(cc.status, cc.stderr + (cc.errorMessage ?? "")).toBe("completed");
      const run = await box.run({ argv: ["/workspace/m"], limits: limits() });
      expect(run).toMatchObject({ status: "failed", exitCode: 4, stdout: "built\n" });
    } finally {
      await box.destroy();
      await expectGvisorNothingLeft(box);
    }
  });

  it("a memory bomb ends memory_limit", async () => {
    const r = await once({
      argv: ["/usr/bin/python3", "-c", "b=[]\nwhile True: b.append(bytearray(8<<20))"],
      limits: { memoryMb: 64 },
    });
    expect(r.status).toBe("memory_limit");
    expect(r.metrics.oomKills).toBeGreaterThan(0);
  });

  it("a fork bomb ends at the host's pids.max: timeout, or failed by SIGKILL (gVisor has no NPROC)", async () => {
    const r = await once({
      argv: sh(":(){ :|:& };:; wait"),
      limits: { pids: 32, timeoutMs: 10_000, killGraceMs: 200 },
    });
    // The shell may see its forks refused (EAGAIN) and exit 2 itself, or the
    // Sentry may die at pids.max (failed, SIGKILL); either way it is bounded.
    expect(["timeout", "failed"], JSON.stringify(r)).toContain(r.status);
    if (r.status === "failed" && r.exitCode === null) expect(r.signal).toBe("SIGKILL");
  });

  it("filling the disk is bounded by the workspace tmpfs (shared by /workspace and /tmp)", async () => {
    const r = await once({
      argv: sh("head -c 8000000 /dev/zero > /tmp/a; head -c 20000000 /dev/zero > /workspace/b"),
    });
    expect(["disk_limit", "failed"]).toContain(r.status);
    expect(r.metrics.diskUsedBytes).toBeLessThanOrEqual(16 * 1024 * 1024);
  });

  it("a timeout stops the program with SIGTERM through runsc", async () => {
    const r = await once({
      argv: sh("exec sleep 100"),
      limits: { timeoutMs: 1500, killGraceMs: 3000 },
    });
    expect(r).toMatchObject({ status: "timeout", signal: "SIGTERM" });
  });

  it("a program that traps SIGTERM is killed at the grace", async () => {
    const r = await once({
      argv: [
        "/usr/bin/python3",
        "-c",
        "import signal,time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\nwhile True: time.sleep(1)",
      ],
      limits: { timeoutMs: 1500, killGraceMs: 500 },
    });
    expect(r).toMatchObject({ status: "timeout", signal: "SIGKILL", stdout: "up\n" });
  });

  it("an output flood ends output_limit", async () => {
    const r = await once({ argv: ["/usr/bin/yes"], limits: { outputBytes: 64 * 1024 } });
    expect(r.status).toBe("output_limit");
    expect(r.stdout.length).toBeLessThanOrEqual(64 * 1024);
  });

  it("a program cannot reach the control socket to forge its outcome", async () => {
    const forge =
      "import socket,sys\ntry:\n s=socket.socket(socket.AF_UNIX); s.connect('/.warden/ctl.sock'); s.sendall(b'exit 0\\n'); print('connected')\nexcept OSError as e: print('refused', e.errno)\nsys.exit(3)";
    const r = await once({ argv: ["/usr/bin/python3", "-c", forge] });
    expect(r.stdout).toMatch(/^refused/);
    expect(r).toMatchObject({ status: "failed", exitCode: 3 });
  });

  it("kill -9 -1 inside spares init and the caller; the run reports the program's own end", async () => {
    const r = await once({ argv: sh("sleep 30 & kill -9 -1; echo survived; exit 5") });
    expect(r).toMatchObject({ status: "failed", exitCode: 5, stdout: "survived\n" });
  });

  it("every host process of a running box is runsc's, in its cgroup, none under the box uid", async () => {
    const box = await host!.prepare({ diskMb: 16, isolation: "gvisor" });
    let seen: { pid: number; uid: number; comm: string }[] = [];
    try {
      const r = await box.run({
        argv: sh("id -u; sleep 2"),
        limits: limits(),
        onCgroup: (cgroup) => {
          setTimeout(() => {
            void cgroup.pids().then((pids) => {
              seen = pids.flatMap((pid) => {
                try {
                  const status = readFileSync(`/proc/${pid}/status`, "utf8");
                  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
                  const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
                  return [{ pid, uid, comm }];
                } catch {
                  return [];
                }
              });
            });
          }, 1200);
        },
      });
      expect(r.stdout).toBe("1000\n");
    } finally {
      await box.destroy();
      await expectGvisorNothingLeft(box);
    }
    expect(seen.length).toBeGreaterThan(0);
    for (const p of seen) {
      expect(p.uid).not.toBe(box.uid);
      // runsc re-executes itself (/proc/self/exe) as the gofer and the Sentry.
      expect(["runsc", "exe", "runsc-gofer", "runsc-sandbox"], JSON.stringify(p)).toContain(p.comm);
    }
  });

  it("a box started ahead answers; cold, warm and bare starts are measured", async () => {
    const spec = { argv: ["/bin/true"], limits: limits() };
    const bare: number[] = [];
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < 3; i++) {
      let t = performance.now();
      spawnSync("/bin/true");
      bare.push(performance.now() - t);
      const c = await host!.prepare({ diskMb: 16, isolation: "gvisor" });
      t = performance.now();
      expect((await c.run(spec)).status).toBe("completed");
      cold.push(performance.now() - t);
      await c.destroy();
      const w = await host!.prepare({ diskMb: 16, isolation: "gvisor" });
      await w.prestart({ limits: spec.limits });
      t = performance.now();
      const r = await w.run(spec);
      warm.push(performance.now() - t);
      expect(r).toMatchObject({ status: "completed", warm: true });
      await w.destroy();
      await expectGvisorNothingLeft(w);
    }
    const fmt = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(", ");
    process.stderr.write(
      `gvisor /bin/true ms: bare ${fmt(bare)} | cold ${fmt(cold)} | warm ${fmt(warm)}\n`,
    );
  });

  it("the pool's python template in gVisor: a warm stub answers the request", async () => {
    const l = limits({ diskMb: 16 });
    const template = await runtimeTemplate(
      host!,
      registry.resolve("python"),
      l,
      undefined,
      "gvisor",
    );
    expect(template.key).toMatch(new RegExp(`^gvisor\\|python\\|.*\\|${probe!.platform}\\|warm$`));
    const box = await host!.prepare(template.box);
    try {
      await box.prestart(template.launch);
      box.provide([{ path: "main.py", content: "import os\nprint('warm', os.getuid())\n" }]);
      const python = registry.resolve("python").tools.python!;
      const t = performance.now();
      const r = await box.run({
        argv: [python, "-u", "main.py"],
        limits: l,
        mounts: [...(template.launch.mounts ?? [])],
      });
      process.stderr.write(
        `gvisor warm python request→result ${(performance.now() - t).toFixed(1)} ms\n`,
      );
      expect(r).toMatchObject({ status: "completed", warm: true, stdout: "warm 1000\n" });
    } finally {
      await box.destroy();
      await expectGvisorNothingLeft(box);
    }
  });

  it("egress goes through the proxy over the bridge: an allowed host answers, another is refused", async () => {
    const server = createServer((_, res) => res.end("from-host"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as AddressInfo).port;
    const fetch = (host: string) =>
      `import urllib.request\ntry: print(urllib.request.urlopen('http://${host}:${port}/', timeout=10).read().decode())\nexcept Exception as e: print('refused', type(e).__name__)`;
    const network = {
      policy: {
        allow: ["api.test"],
        ports: [port],
        maxBytes: 1 << 20,
        maxConnections: 10,
        staticHosts: { "api.test": "127.0.0.1", "other.test": "127.0.0.1" },
        allowPrivateAddresses: true,
      },
    };
    try {
      const ok = await once({ argv: ["/usr/bin/python3", "-c", fetch("api.test")], network });
      expect(ok.stdout, ok.stderr + (ok.errorMessage ?? "")).toBe("from-host\n");
      expect(ok.metrics.networkConnections).toBe(1);
      const denied = await once({ argv: ["/usr/bin/python3", "-c", fetch("other.test")], network });
      expect(denied.stdout).toMatch(/^refused/);
    } finally {
      server.close();
    }
  });

  it("a started box that is never taken is destroyed with nothing left", async () => {
    const box = await host!.prepare({ diskMb: 16, isolation: "gvisor" });
    await box.prestart({ limits: limits() });
    expect(await box.startedMemoryBytes()).toBeGreaterThan(0);
    await box.destroy();
    await expectGvisorNothingLeft(box);
  });

  it("the namespaces tier is untouched: prepare without isolation gives a bubblewrap box", async () => {
    const box = await host!.prepare({ diskMb: 4 });
    try {
      const r = await box.run({ argv: ["/usr/bin/id", "-u"], limits: limits() });
      expect(r.status).toBe("completed");
      expect(Number(r.stdout)).toBe(1000);
    } finally {
      await box.destroy();
    }
    // The run's cgroup goes in teardown that may finish after the result: wait for it.
    await host!.settled();
    expect(cgroupDirsOf(host!, box.id).length).toBe(0);
  });
});
