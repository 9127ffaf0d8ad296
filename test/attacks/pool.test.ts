/**
 * The warm pool: a box started ahead of its request is used once, and an
 * execution that takes one sees nothing of any earlier execution, runs under
 * its own request's limits, and with a cold run's semantics.
 */
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executeCode } from "../../src/runtimes/execute.js";
import { runtimeTemplate } from "../../src/runtimes/warm.js";
import { SandboxHost } from "../../src/sandbox/host.js";
import type { SandboxLimits } from "../../src/sandbox/types.js";
import { config, expectNothingLeft, limits, registry, testHost } from "../helpers/sandbox.js";
import { eventually } from "../helpers/server.js";
import { skippedTiers, TIERS } from "../helpers/tiers.js";
import type { Isolation } from "../../src/contract/isolation.js";

let host: SandboxHost;

beforeAll(async () => {
  host = await SandboxHost.open({
    config: {
      ...config.sandbox,
      pool: { ...config.sandbox.pool, enabled: true, idleBoxes: 2, maxPerTemplate: 2 },
    },
    runDir: config.runDir,
    privateFiles: registry.privateFiles(),
  });
  // A gvisor template's key names the probed platform: known only once the probe answered.
  await host.gvisor();
});

afterAll(async () => {
  await host.close();
  // TIERS asked the file's shared host (helpers/tiers.ts): it goes too, with its launcher's cgroups.
  await (await testHost()).close();
  // Closing the host destroyed every pooled box: no cgroup of this process is left.
  const mine = (await host.cgroups.list()).filter((n) => n.startsWith(`b${process.pid}-`));
  expect(mine).toEqual([]);
});

/** Prewarms the template of `language` with `l` and waits until a box is ready. */
async function warmedIn(
  language: string,
  l: SandboxLimits,
  isolation: Isolation = "namespaces",
): Promise<void> {
  const template = await runtimeTemplate(host, registry.resolve(language), l, undefined, isolation);
  host.pool.prewarm(template);
  await eventually(
    async () => (host.pool.stats().find((s) => s.key === template.key)?.ready ?? 0) > 0,
    30_000,
  );
}

async function runIn(
  language: string,
  code: string,
  l: SandboxLimits,
  extra: { env?: Record<string, string>; args?: string[]; isolation?: Isolation } = {},
) {
  let box: { id: string; uid: number } | undefined;
  const result = await executeCode(host, registry, {
    language,
    files: [{ path: language === "python" ? "main.py" : "main.js", content: code }],
    limits: l,
    onBox: (b) => (box = b),
    ...extra,
  });
  await expectNothingLeft(host, box!);
  return { result, box: box! };
}

const LEAVE_TRACES = `
import os, subprocess, json
open("/workspace/secret.txt", "w").write("A")
open("/tmp/secret.txt", "w").write("A")
open("/dev/shm/secret", "w").write("A")
os.environ["LEAKED"] = "A"
subprocess.Popen(["/bin/sleep", "60"], start_new_session=True)
hog = bytearray(64 * 1024 * 1024)
print("left traces")
`;

const LOOK_FOR_TRACES = `
import os, sys
print(sorted(os.listdir("/workspace")))
print(sorted(os.listdir("/tmp")), sorted(os.listdir("/dev/shm")))
print("LEAKED" in os.environ, os.environ.get("FOO"))
print(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()) == [1, os.getpid()])
print("json" in sys.modules, "subprocess" in sys.modules)
print(sorted(int(fd) for fd in os.listdir("/proc/self/fd")))
print(__name__, __file__, sys.argv, sys.path[0])
import resource
print(resource.getrlimit(resource.RLIMIT_NOFILE), resource.getrlimit(resource.RLIMIT_FSIZE)[0])
raise RuntimeError("from the user's file")
`;

skippedTiers("warm pool");

describe.each(TIERS)("warm pool [%s]", (isolation) => {
  const warmed = (language: string, l: SandboxLimits) => warmedIn(language, l, isolation);
  const run = (...[language, code, l, extra]: Parameters<typeof runIn>) =>
    runIn(language, code, l, { ...extra, isolation });

  it("an execution sees nothing of an earlier one: files, env, processes, memory, /tmp, /dev/shm, uid", async () => {
    const l = limits({ memoryMb: 256, openFiles: 200, diskMb: 16 });
    await warmed("python", l);
    const first = await run("python", LEAVE_TRACES, l, { env: { FOO: "first" } });
    expect(first.result.stdout).toBe("left traces\n");
    expect(first.result.metrics.warmStart).toBe(true);

    await warmed("python", l);
    const second = await run("python", LOOK_FOR_TRACES, l, { args: ["x", "y"] });
    expect(second.result.metrics.warmStart).toBe(true);
    expect(second.box.id).not.toBe(first.box.id);
    expect(second.box.uid).not.toBe(first.box.uid);
    expect(second.result.stdout.split("\n")).toEqual([
      "['main.py', 'output']",
      "[] []",
      "False None",
      "True",
      "False False",
      "[0, 1, 2, 3]", // 3 is listdir's own descriptor: nothing of the stub's is left open
      "__main__ /workspace/main.py ['main.py', 'x', 'y'] /workspace",
      `(200, 200) ${16 * 1024 * 1024}`,
      "",
    ]);
    // The traceback starts in the user's file: nothing of Warden's stub shows.
    expect(second.result.stderr).toContain('File "/workspace/main.py", line 12, in <module>');
    expect(second.result.stderr).toContain("RuntimeError: from the user's file");
    expect(second.result.stderr).not.toContain("warm");
    expect(second.result.exitCode).toBe(1);
    // The first run's own memory is not counted as the second's.
    expect(second.result.metrics.peakMemoryBytes).toBeLessThan(64 * 1024 * 1024);
  });

  it("a warm box holds its request's memory, CPU and output limits", async () => {
    const l = limits({ memoryMb: 64, cpuTimeMs: 400, outputBytes: 4096 });
    await warmed("python", l);
    const hog = await run("python", "x = bytearray(200 * 1024 * 1024)\nprint(len(x))", l);
    expect(hog.result.metrics.warmStart).toBe(true);
    expect(hog.result.status).toBe("memory_limit");

    await warmed("python", l);
    const spin = await run("python", "while True: pass", l);
    expect(spin.result.metrics.warmStart).toBe(true);
    expect(spin.result.status).toBe("timeout");
    // The CPU the interpreter used before the request came is not the program's.
    expect(spin.result.metrics.cpuTimeMs).toBeLessThan(3000);

    await warmed("python", l);
    const flood = await run("python", "while True: print('x' * 1000)", l);
    expect(flood.result.status).toBe("output_limit");
    expect(flood.result.stdout.length).toBeLessThanOrEqual(4096);
  });

  it("a request the warm interpreter cannot honour runs with the semantics it asked for", async () => {
    // PYTHONHASHSEED is read only at start-up: the same interpreter on the host says
    // what a cold start prints.
    const code = "print(hash('warden'))";
    const expected = execFileSync("/usr/bin/python3", ["-c", code], {
      env: { PYTHONHASHSEED: "0" },
    }).toString();
    const l = limits({ diskMb: 32 });
    const template = await runtimeTemplate(
      host,
      registry.resolve("python"),
      l,
      undefined,
      isolation,
    );
    await warmed("python", l);
    // Warden does not hand such a request to a warm box...
    const seeded = await run("python", code, l, { env: { PYTHONHASHSEED: "0" } });
    expect(seeded.result.metrics.warmStart).toBe(false);
    expect(seeded.result.stdout).toBe(expected);
    // ...and a warm stub given one anyway execs it cold.
    const box = await host.prepare(template.box);
    try {
      await box.prestart(template.launch);
      box.provide([{ path: "main.py", content: code }]);
      const python = registry.resolve("python").tools.python!;
      const ran = await box.run({
        argv: [python, "-u", "main.py"],
        env: { PYTHONHASHSEED: "0" },
        limits: l,
        mounts: [...(template.launch.mounts ?? [])],
      });
      expect(ran.warm).toBe(true);
      expect(ran.stdout).toBe(expected);
    } finally {
      await box.destroy();
    }
  });

  it("node runs the user's file as its main module", async () => {
    const program = `const fs = require("fs");
console.log(require.main === module, __filename, process.argv.slice(1).join(" "), process.env.FOO);
const pipes = fs.readdirSync("/proc/self/fd").filter((fd) => {
  try { return fs.readlinkSync("/proc/self/fd/" + fd).startsWith("pipe:"); } catch { return false; }
});
console.log(pipes.length);
process.exitCode = 3;`;
    const l = limits({ memoryMb: 256 });
    await warmed("javascript", l);
    const warm = await run("javascript", program, l, { env: { FOO: "bar" }, args: ["a"] });
    // Other limits, another template: this one starts cold.
    const cold = await run("javascript", program, limits({ memoryMb: 200 }), {
      env: { FOO: "bar" },
      args: ["a"],
    });
    expect(warm.result.metrics.warmStart).toBe(true);
    expect(cold.result.metrics.warmStart).toBe(false);
    expect(warm.result.stdout.split("\n")[0]).toBe(
      "true /workspace/main.js /workspace/main.js a bar",
    );
    // No pipe of the stub's is left open: the same pipes as a cold start.
    expect(warm.result.stdout).toBe(cold.result.stdout);
    expect(warm.result.exitCode).toBe(3);
  });
});
