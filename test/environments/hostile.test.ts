/**
 * A hostile installer: an npm package whose install script (run inside the
 * build sandbox) leaves a link to /etc/shadow, a link climbing out of the
 * tree, a fifo, a huge file or a flood of files. Each build fails naming the
 * entry and the bound, leaves nothing in the data dir, and Warden goes on.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildEnvironment, type BuildContext } from "../../src/environments/build.js";
import { EnvironmentStore } from "../../src/environments/store.js";
import { makeNpmTarball, PackageIndex } from "../helpers/package-index.js";
import { runCode } from "../helpers/sandbox.js";

let dataDir: string;
let pkgDir: string;
let index: PackageIndex;
let ctx: BuildContext;

const SCRIPTS: Record<string, string> = {
  shadow: "ln -s /etc/shadow shadow-link",
  climb: "ln -s ../../../../../../etc/passwd up",
  fifo: "mkfifo pipe",
  huge: "head -c 40000000 /dev/zero > big",
  many: "mkdir many && cd many && seq 1 3000 | xargs touch",
};

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "warden-env-hostile-"));
  pkgDir = mkdtempSync(join(tmpdir(), "warden-pkgs-"));
  index = await PackageIndex.start();
  for (const [name, script] of Object.entries(SCRIPTS))
    index.addNpm(
      makeNpmTarball(pkgDir, {
        name: `evil-${name}`,
        version: "1.0.0",
        files: { "index.js": "module.exports = 1;\n" },
        scripts: { install: script },
      }),
    );
  ctx = await index.buildContext(new EnvironmentStore(dataDir), {
    diskMb: 256,
    memoryMb: 512,
    timeoutSeconds: 120,
    maxSizeMb: 16,
    maxFiles: 2000,
  });
}, 60_000);
afterAll(async () => {
  await index?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(pkgDir, { recursive: true, force: true });
});

describe("a hostile installer", () => {
  it.each([
    ["shadow", /shadow-link: a symbolic link leading out of the tree/],
    ["climb", /up: a symbolic link leading out of the tree/],
    ["fifo", /pipe: not a regular file, directory or symbolic link/],
    ["huge", /big: more than 16777216 bytes in all \(environments\.build\.maxSizeMb\)/],
    ["many", /more than 2000 files and directories \(environments\.build\.maxFiles\)/],
  ])(
    "%s: the build fails, nothing is left, Warden goes on",
    async (name, reason) => {
      await expect(
        buildEnvironment(ctx, { name: `env-${name}`, node: { npm: [`evil-${name}`] } }),
      ).rejects.toThrow(reason);
      // The installer did run (its package was fetched), and nothing of it stayed.
      expect(index.requests).toContain(`/npm/evil-${name}`);
      expect(readdirSync(join(dataDir, "environments"))).toEqual([]);
      expect((await ctx.store.list()).map((e) => e.name)).toEqual(["default"]);
      const after = await runCode("python", "print('still here')");
      expect(after.stdout).toBe("still here\n");
    },
    120_000,
  );

  it("refuses package specs that would be installer options", async () => {
    await expect(
      buildEnvironment(ctx, { name: "opt", python: { pip: ["--index-url=http://evil/"] } }),
    ).rejects.toThrow(/--pip: "--index-url=http:\/\/evil\/" is not a package name/);
    await expect(
      buildEnvironment(ctx, { name: "opt", node: { npm: ["--registry=http://evil/"] } }),
    ).rejects.toThrow(/--npm: .* is not a package name/);
    await expect(buildEnvironment(ctx, { name: "Bad/Name", node: { npm: ["x"] } })).rejects.toThrow(
      /name: "Bad\/Name" is not an environment name/,
    );
  });
});
