/**
 * The registry resolves a runtime's tools once and afterwards only checks they
 * are still there: a tool removed after start must still make its language
 * UNSUPPORTED_LANGUAGE, and one installed again must be found again.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RuntimeRegistry } from "../../src/runtimes/registry.js";

// Tools resolve only inside the system directories a sandbox sees: writing one there
// needs root, so this lives in the system tier, not the unit tier.
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("runtime resolution cache", () => {
  it("notices a tool that disappears and one that comes back", () => {
    const dir = mkdtempSync("/usr/local/lib/warden-registry-");
    dirs.push(dir);
    const tool = join(dir, "lean-tool");
    const install = (): void => {
      writeFileSync(tool, "#!/bin/sh\n");
      chmodSync(tool, 0o755);
    };
    install();
    const registry = new RuntimeRegistry(
      [dir],
      [
        {
          language: "leantest",
          fileName: "main.lt",
          tools: { t: ["lean-tool"] },
          run: ["{t}", "{file}"],
          version: { tool: "t", args: [] },
        },
      ],
      {},
    );
    const first = registry.resolve("leantest");
    expect(first.tools.t).toBe(tool);
    expect(registry.resolve("leantest")).toBe(first);
    rmSync(tool);
    expect(() => registry.resolve("leantest")).toThrow(/not installed on this host/);
    install();
    expect(registry.resolve("leantest").tools.t).toBe(tool);
  });
});
