/**
 * `warden bench`, environments: the start of a trivial Python run with a
 * small environment, and with a large one (thousands of files), against the
 * default environment, in the same run, cold and warm. The environments are
 * built here from wheels made on the spot (--from-dir: no network), in a
 * temporary data dir, and removed afterwards. Start cost should not grow
 * with the environment: its tree is bound, never copied.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../config/schema.js";
import { buildEnvironment } from "../environments/build.js";
import { EnvironmentStore } from "../environments/store.js";
import { executeCode } from "../runtimes/execute.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import { runtimeTemplate } from "../runtimes/warm.js";
import { SandboxHost } from "../sandbox/host.js";
import type { SandboxEnvironment, SandboxLimits } from "../sandbox/types.js";
import type { Logger } from "../audit/logger.js";
import { round, stats, timed, type Stats } from "./measure.js";

export interface EnvBenchRow {
  case: string;
  files: number;
  sizeBytes: number;
  cold: Stats;
  warm: Stats;
  coldRatio: number;
  warmRatio: number;
}

/** A pure-Python wheel of `files` modules of `bytes` each, zipped by the system Python. */
function wheel(dir: string, name: string, files: number, bytes: number): void {
  const stage = mkdtempSync(join(tmpdir(), "warden-bench-wheel-"));
  try {
    const write = (path: string, content: string): void => {
      mkdirSync(dirname(join(stage, path)), { recursive: true });
      writeFileSync(join(stage, path), content);
    };
    const info = `${name}-1.0.0.dist-info`;
    write(`${name}/__init__.py`, "X = 1\n");
    for (let i = 0; i < files; i++) write(`${name}/m${i}.py`, `# ${"x".repeat(bytes)}\n`);
    write(`${info}/METADATA`, `Metadata-Version: 2.1\nName: ${name}\nVersion: 1.0.0\n\n`);
    write(`${info}/WHEEL`, "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n");
    write(`${info}/RECORD`, "");
    execFileSync(
      "python3",
      ["-m", "zipfile", "-c", join(dir, `${name}-1.0.0-py3-none-any.whl`), name, info],
      { cwd: stage },
    );
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export async function benchEnvironments(o: {
  config: Config;
  registry: RuntimeRegistry;
  logger: Logger;
  limits: SandboxLimits;
  runs: number;
}): Promise<EnvBenchRow[]> {
  const dataDir = mkdtempSync(join(tmpdir(), "warden-bench-env-"));
  // Cold runs on a host without a pool (taking from one would start boxes for
  // the next run); warm runs on a second host whose pool holds one box per case.
  const open = (pool: boolean): Promise<SandboxHost> =>
    SandboxHost.open({
      config: {
        ...o.config.sandbox,
        pool: { ...o.config.sandbox.pool, enabled: pool, maxPerTemplate: 1, idleBoxes: 1 },
      },
      runDir: o.config.runDir,
      logger: o.logger,
      privateFiles: o.registry.privateFiles(),
    });
  let host = await open(false);
  try {
    const store = new EnvironmentStore(dataDir);
    const sizes = { small: [1, 100], large: [4000, 8192] } as const;
    const envs: { name: string; env: SandboxEnvironment; files: number; sizeBytes: number }[] = [];
    for (const [name, [files, bytes]] of Object.entries(sizes)) {
      const wheels = join(dataDir, `wheels-${name}`);
      mkdirSync(wheels);
      wheel(wheels, `bench_${name}`, files, bytes);
      const info = await buildEnvironment(
        {
          host,
          store,
          config: o.config.environments,
          network: { staticHosts: {}, privateHosts: [] },
          searchPath: o.config.sandbox.searchPath,
        },
        { name, python: { pip: [], fromDir: wheels } },
      );
      envs.push({
        name,
        env: store.resolve(name, "environment")!,
        files: info.fileCount ?? 0,
        sizeBytes: info.sizeBytes ?? 0,
      });
    }
    const runtime = o.registry.resolve("python");
    const run = (environment: SandboxEnvironment | undefined) =>
      executeCode(host, o.registry, {
        language: "python",
        files: [{ path: "main.py", content: "pass" }],
        limits: o.limits,
        environment,
      });
    const cases = [{ name: "default", env: undefined }, ...envs];
    const cold = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    const warm = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    for (let i = 0; i < o.runs; i++)
      for (const c of cases) cold.get(c.name)!.push(await timed(() => run(c.env)));
    await host.close();
    host = await open(true);
    const templates = await Promise.all(
      cases.map((c) => runtimeTemplate(host, runtime, o.limits, c.env)),
    );
    for (const t of templates) host.pool.prewarm(t);
    const ready = async (key: string): Promise<void> => {
      for (let i = 0; i < 1000; i++) {
        const stats = host.pool.stats();
        if (
          (stats.find((s) => s.key === key)?.ready ?? 0) > 0 &&
          stats.every((s) => s.starting === 0)
        )
          return;
        await sleep(5);
      }
    };
    for (let i = 0; i < o.runs; i++)
      for (const [j, c] of cases.entries()) {
        await ready(templates[j]!.key);
        warm.get(c.name)!.push(await timed(() => run(c.env)));
      }
    const base = { cold: stats(cold.get("default")!), warm: stats(warm.get("default")!) };
    return cases.map((c) => {
      const coldStats = stats(cold.get(c.name)!);
      const warmStats = stats(warm.get(c.name)!);
      const found = envs.find((e) => e.name === c.name);
      return {
        case: c.name === "default" ? "default environment" : `${c.name} environment`,
        files: found?.files ?? 0,
        sizeBytes: found?.sizeBytes ?? 0,
        cold: coldStats,
        warm: warmStats,
        coldRatio: round(coldStats.medianMs / base.cold.medianMs),
        warmRatio: round(warmStats.medianMs / base.warm.medianMs),
      };
    });
  } finally {
    await host.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
