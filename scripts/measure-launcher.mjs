// Event-loop time blocked per helper start: Node's spawn against warden-launch,
// at Warden's normal RSS and with ~1 GiB of touched ballast, in one run.
// Usage (root, after `npm run build`): node scripts/measure-launcher.mjs [runs]
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { Launcher } from "../dist/sandbox/launcher.js";
import { defaultNativeDir } from "../dist/sandbox/host.js";
import { silentLogger } from "../dist/audit/logger.js";

const runs = Number(process.argv[2] ?? 200);
const helper = "/bin/true";
const seccomp = join(defaultNativeDir(), "seccomp.bpf");
const dir = mkdtempSync(join(tmpdir(), "measure-launch-"));
const launcher = new Launcher({
  launcherPath: join(defaultNativeDir(), "warden-launch"),
  helperPath: helper,
  seccompPath: seccomp,
  socketDir: join(dir, "s"),
  logger: silentLogger,
});

const say = (line) => process.stdout.write(`${line}\n`);
const closed = (child) => new Promise((r) => child.once("close", r));

async function measure(start) {
  const sync = [];
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const child = start();
    sync.push(performance.now() - t);
    child.stdio[0].end();
    await closed(child);
  }
  const wall = (performance.now() - t0) / runs;
  const cpu = process.cpuUsage(cpu0);
  eld.disable();
  sync.sort((a, b) => a - b);
  return {
    syncMeanMs: sync.reduce((a, b) => a + b, 0) / runs,
    syncP50Ms: sync[Math.floor(runs / 2)],
    eldMaxMs: eld.max / 1e6,
    wallPerStartMs: wall,
    cpuPerStartMs: (cpu.user + cpu.system) / 1000 / runs,
  };
}

const nodeSpawn = () => {
  const fd = openSync(seccomp, "r");
  try {
    return spawn(helper, [], { stdio: ["pipe", "pipe", "pipe", "pipe", "pipe", fd], env: {} });
  } finally {
    closeSync(fd);
  }
};
const viaLauncher = () => launcher.start([]);

async function round(label) {
  await closed(viaLauncher()); // launcher up before timing
  const rss = process.memoryUsage().rss / 2 ** 20;
  const a = await measure(nodeSpawn);
  const b = await measure(viaLauncher);
  const f = (x) => x.toFixed(3);
  say(`${label} (RSS ${rss.toFixed(0)} MiB, ${runs} starts each)`);
  for (const [name, r] of [
    ["node spawn", a],
    ["launcher  ", b],
  ])
    say(
      `  ${name}  blocked/start mean ${f(r.syncMeanMs)} ms p50 ${f(r.syncP50Ms)} ms;` +
        ` max loop delay ${f(r.eldMaxMs)} ms; wall/start ${f(r.wallPerStartMs)} ms;` +
        ` Warden CPU/start ${f(r.cpuPerStartMs)} ms`,
    );
  say(`  ratio launcher/spawn (blocked mean): ${(b.syncMeanMs / a.syncMeanMs).toFixed(3)}`);
}

await round("normal");
const ballast = Buffer.alloc(1 << 30, 1); // alloc fills it: every page touched
await round("with 1 GiB ballast");
void ballast.length;
launcher.close();
rmSync(dir, { recursive: true, force: true });
