/**
 * Copying a build's output: links are taken only when the kernel, following
 * them, stays inside the tree, which reading their text alone cannot tell
 * (a link through another link). Made by hand in a temp dir: no root needed.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { copyTree, realDirBeneath } from "../../src/environments/tree.js";

const bounds = { maxBytes: 1 << 20, maxFiles: 1000 };
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A build output like npm's: node_modules/<pkg> with `extra` applied inside the package. */
function output(extra: (pkg: string) => void): string {
  dir = mkdtempSync(join(tmpdir(), "warden-tree-"));
  const pkg = join(dir, "src", "node_modules", "pkg");
  mkdirSync(join(pkg, "bin"), { recursive: true });
  writeFileSync(join(pkg, "bin", "cli.js"), "#!/usr/bin/env node\n");
  mkdirSync(join(dir, "src", "node_modules", ".bin"));
  symlinkSync("../pkg/bin/cli.js", join(dir, "src", "node_modules", ".bin", "cli"));
  extra(pkg);
  return join(dir, "src");
}

describe("copying a build's output", () => {
  it("keeps links that stay inside through real directories (npm's .bin links)", async () => {
    const src = output((pkg) => symlinkSync("bin", join(pkg, "bin-alias")));
    await expect(copyTree(src, join(dir, "dest"), bounds, "out")).resolves.toMatchObject({
      fileCount: 7,
    });
  });

  it("refuses a link whose text stays inside but whose way out goes through another link", async () => {
    // up -> the package dir; esc reads as the tree's root, but the kernel first
    // follows `up` and then climbs six levels from the package: out of the tree.
    const src = output((pkg) => {
      mkdirSync(join(pkg, "a1", "a2", "a3"), { recursive: true });
      symlinkSync("../../..", join(pkg, "a1", "a2", "a3", "up"));
      symlinkSync("a1/a2/a3/up/../../../../../..", join(pkg, "esc"));
    });
    await expect(copyTree(src, join(dir, "dest"), bounds, "out")).rejects.toThrow(
      /node_modules\/pkg\/esc: a symbolic link leading out of the tree through another link/,
    );
  });

  it("refuses a link that climbs out by its text", async () => {
    const src = output((pkg) => symlinkSync("../../../../etc", join(pkg, "up")));
    await expect(copyTree(src, join(dir, "dest"), bounds, "out")).rejects.toThrow(
      /pkg\/up: a symbolic link leading out of the tree/,
    );
  });

  it("reaches an output dir through real directories only", async () => {
    const src = output(() => undefined);
    mkdirSync(join(dir, "ws"));
    symlinkSync(src, join(dir, "ws", "out")); // the sandbox made `out` a link
    await expect(realDirBeneath(join(dir, "ws"), "out", "node_modules")).rejects.toThrow(
      /out\/node_modules: not a plain directory/,
    );
    await expect(realDirBeneath(dir, "src", "node_modules")).resolves.toBe(
      join(dir, "src", "node_modules"),
    );
  });
});
