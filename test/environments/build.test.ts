/**
 * Building environments in a sandbox, from a directory of wheels and from a
 * loopback index (pip and npm), and using them in one-shot runs: importable
 * with no setup, read-only, warm like the default environment.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildEnvironment, type BuildContext } from "../../src/environments/build.js";
import { EnvironmentStore } from "../../src/environments/store.js";
import { makeNpmTarball, makeWheel, PackageIndex } from "../helpers/package-index.js";
import { runCode } from "../helpers/sandbox.js";

let dataDir: string;
let wheelDir: string;
let index: PackageIndex;
let ctx: BuildContext;
let store: EnvironmentStore;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "warden-env-"));
  wheelDir = mkdtempSync(join(tmpdir(), "warden-wheels-"));
  index = await PackageIndex.start();
  const pkgDir = join(wheelDir, "index");
  index.addWheel(
    makeWheel(pkgDir, {
      name: "wardenidx",
      version: "2.0.1",
      files: { "wardenidx/__init__.py": "VALUE = 'from-index'\n" },
    }),
  );
  index.addNpm(
    makeNpmTarball(pkgDir, {
      name: "warden-npm-demo",
      version: "1.4.0",
      files: { "index.js": "module.exports = { hello: () => 'npm-hello' };\n" },
    }),
  );
  makeWheel(wheelDir, {
    name: "wardendemo",
    version: "1.2.3",
    files: { "wardendemo/__init__.py": "GREETING = 'hello from the environment'\n" },
  });
  store = new EnvironmentStore(dataDir);
  ctx = await index.buildContext(store, { diskMb: 256, memoryMb: 512, timeoutSeconds: 120 });
}, 60_000);
afterAll(async () => {
  await index?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(wheelDir, { recursive: true, force: true });
});

describe("environments", () => {
  it("builds from a directory of wheels with no network and lists its packages", async () => {
    const info = await buildEnvironment(ctx, {
      name: "fromdir",
      python: { pip: [], fromDir: wheelDir },
    });
    expect(info.packages).toEqual([{ language: "python", name: "wardendemo", version: "1.2.3" }]);
    expect(info.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const mount = store.resolve("fromdir", "environment");
    const r = await runCode("python", "import wardendemo; print(wardendemo.GREETING)", {
      environment: mount,
    });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hello from the environment\n");
  }, 120_000);

  it("builds from the loopback index with pip and npm", async () => {
    const info = await buildEnvironment(ctx, {
      name: "fromindex",
      python: { pip: ["wardenidx==2.0.1"] },
      node: { npm: ["warden-npm-demo"] },
    });
    expect(info.packages).toEqual([
      { language: "python", name: "wardenidx", version: "2.0.1" },
      { language: "node", name: "warden-npm-demo", version: "1.4.0" },
    ]);
    const mount = store.resolve("fromindex", "environment");
    const py = await runCode("python", "import wardenidx; print(wardenidx.VALUE)", {
      environment: mount,
    });
    expect(py.stdout).toBe("from-index\n");
    const js = await runCode("javascript", "console.log(require('warden-npm-demo').hello())", {
      environment: mount,
    });
    expect(js.stdout).toBe("npm-hello\n");
  }, 240_000);

  it("is read-only inside the sandbox, importable from ESM and from a venv layered on it", async () => {
    const mount = store.resolve("fromindex", "environment");
    const write = await runCode(
      "python",
      [
        "import os",
        "for p in ['/.warden/env/python/wardenidx/__init__.py', '/.warden/env/python/new.py', '/node_modules/x']:",
        "    try:",
        "        open(p, 'a').write('x')",
        "        print('WROTE', p)",
        "    except OSError as e:",
        "        print('refused', e.errno)",
      ].join("\n"),
      { environment: mount },
    );
    // EACCES (root's file) or EROFS (the mount): never written.
    expect(write.stdout).toMatch(/^refused (13|30)\nrefused 30\nrefused 30\n$/);
    const esm = await runCode(
      "javascript",
      "import('warden-npm-demo').then((m) => console.log(m.default.hello()))",
      { environment: mount },
    );
    expect(esm.stdout).toBe("npm-hello\n");
    // A venv with --system-site-packages (how a session layers its own installs).
    const venv = await runCode(
      "bash",
      [
        "set -e",
        "python3 -m venv --without-pip --system-site-packages /tmp/v",
        "/tmp/v/bin/python -c 'import sys, wardenidx; print(wardenidx.VALUE, sys.prefix)'",
      ].join("\n"),
      { environment: mount },
    );
    expect(venv.stderr).toBe("");
    expect(venv.stdout).toBe("from-index /tmp/v\n");
  }, 120_000);
});
