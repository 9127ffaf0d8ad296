/**
 * An environment run is warm like a default run: its own pool template (the
 * tree bound when the box starts, Warden's PYTHONPATH in the stub's start-up
 * environment), taken by a run that names it, never by one that does not;
 * a request that sets its own start-up variable still runs cold.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EnvironmentsConfigSchema } from "../../src/config/environments.js";
import { buildEnvironment } from "../../src/environments/build.js";
import { EnvironmentStore } from "../../src/environments/store.js";
import { executeCode } from "../../src/runtimes/execute.js";
import { runtimeTemplate } from "../../src/runtimes/warm.js";
import { SandboxHost } from "../../src/sandbox/host.js";
import type { SandboxEnvironment } from "../../src/sandbox/types.js";
import { makeWheel } from "../helpers/package-index.js";
import { config, limits, registry } from "../helpers/sandbox.js";
import { eventually } from "../helpers/server.js";

let host: SandboxHost;
let dataDir: string;
let wheelDir: string;
let env: SandboxEnvironment;

beforeAll(async () => {
  host = await SandboxHost.open({
    config: {
      ...config.sandbox,
      pool: { ...config.sandbox.pool, enabled: true, idleBoxes: 1, maxPerTemplate: 1 },
    },
    runDir: config.runDir,
    privateFiles: registry.privateFiles(),
  });
  dataDir = mkdtempSync(join(tmpdir(), "warden-envwarm-"));
  wheelDir = mkdtempSync(join(tmpdir(), "warden-wheels-"));
  makeWheel(wheelDir, {
    name: "warmdemo",
    version: "0.1.0",
    files: { "warmdemo.py": "X = 'warm-env'\n" },
  });
  const store = new EnvironmentStore(dataDir);
  await buildEnvironment(
    {
      host,
      store,
      config: EnvironmentsConfigSchema.parse({ build: { diskMb: 128, memoryMb: 256 } }),
      network: { staticHosts: {}, privateHosts: [] },
      searchPath: config.sandbox.searchPath,
    },
    { name: "warm", python: { pip: [], fromDir: wheelDir } },
  );
  env = store.resolve("warm", "environment")!;
}, 120_000);
afterAll(async () => {
  await host?.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(wheelDir, { recursive: true, force: true });
});

const run = (
  code: string,
  extra: { environment?: SandboxEnvironment; env?: Record<string, string> },
) =>
  executeCode(host, registry, {
    language: "python",
    files: [{ path: "main.py", content: code }],
    limits: limits(),
    ...extra,
  });

describe("environments and the warm pool", () => {
  it("serves an environment run from its own warm template", async () => {
    const template = await runtimeTemplate(host, registry.resolve("python"), limits(), env);
    expect(template.key).toMatch(/\|env=warm@/);
    host.pool.prewarm(template);
    await eventually(
      async () => (host.pool.stats().find((s) => s.key === template.key)?.ready ?? 0) > 0,
      30_000,
    );
    const warm = await run("import warmdemo; print(warmdemo.X)", { environment: env });
    expect(warm.stdout).toBe("warm-env\n");
    expect(warm.metrics.warmStart).toBe(true);
    // A default run does not take the environment's box (nor sees its packages).
    await eventually(
      async () => (host.pool.stats().find((s) => s.key === template.key)?.ready ?? 0) > 0,
      30_000,
    );
    const plain = await run("import importlib.util as u; print(u.find_spec('warmdemo'))", {});
    expect(plain.stdout).toBe("None\n");
    expect(host.pool.stats().find((s) => s.key === template.key)?.ready).toBe(1);
    // The request's own start-up variable: served cold, its own value wins.
    const own = await run("import os; print(os.environ['PYTHONPATH'])", {
      environment: env,
      env: { PYTHONPATH: "/workspace" },
    });
    expect(own.stdout).toBe("/workspace\n");
    expect(own.metrics.warmStart).toBe(false);
  }, 120_000);
});
