import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { prepareRunDir } from "../../src/sandbox/host-layout.js";

const scratch = mkdtempSync(join(tmpdir(), "warden-rundir-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("the run directory", () => {
  it("gives each version of Warden's own files a tree of its own, so one Warden never rewrites another's under its sessions", async () => {
    const root = join(scratch, "run");
    const agentV1 = join(scratch, "agent-v1.cjs");
    const agentV2 = join(scratch, "agent-v2.cjs");
    writeFileSync(agentV1, "// v1\n");
    writeFileSync(agentV2, "// v2\n");
    const first = await prepareRunDir(root, "1-1", { "agent.cjs": agentV1 });
    const second = await prepareRunDir(root, "2-2", { "agent.cjs": agentV2 });
    expect(second.lib).not.toBe(first.lib);
    expect(readFileSync(join(first.lib, "agent.cjs"), "utf8")).toBe("// v1\n");
    expect(readFileSync(join(second.lib, "agent.cjs"), "utf8")).toBe("// v2\n");
    // The same files again share the tree.
    const again = await prepareRunDir(root, "3-3", { "agent.cjs": agentV1 });
    expect(again.lib).toBe(first.lib);
  });
});
