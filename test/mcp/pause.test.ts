/** pause_sandbox, resume_sandbox and snapshot_sandbox through the MCP SDK's own client (stdio). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, text } from "./drive.js";

const root = join(import.meta.dirname, "..", "..");
let dataDir: string;
let client: Client;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "warden-mcp-pause-"));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [join(root, "bin", "warden.js"), "mcp"],
    cwd: root,
    env: {
      ...(process.env as Record<string, string>),
      WARDEN_LOG_LEVEL: "warn",
      WARDEN_POOL: "false",
      WARDEN_DATA_DIR: dataDir,
    },
    stderr: "pipe",
  });
  client = new Client({ name: "warden-test", version: "1.0.0" });
  await client.connect(transport);
});
afterAll(async () => {
  await client?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("pause tools over MCP", () => {
  it("pauses a sandbox (its calls refused), resumes it with its state, and snapshots it into a new one", async () => {
    const created = await call(client, "create_sandbox", {});
    const id = created.structuredContent!.sandbox_id as string;
    await call(client, "run_in_sandbox", {
      sandbox_id: id,
      code: "x = 5\nopen('f.txt','w').write('hi')",
    });
    const paused = await call(client, "pause_sandbox", { sandbox_id: id });
    expect(paused.structuredContent).toMatchObject({ sandbox_id: id, state: "paused" });
    const refused = await call(client, "run_in_sandbox", { sandbox_id: id, code: "x" });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatch(/paused.*resume/);
    const resumed = await call(client, "resume_sandbox", { sandbox_id: id });
    expect(resumed.structuredContent).toMatchObject({ state: "running", pausedAt: null });
    const cell = await call(client, "run_in_sandbox", { sandbox_id: id, code: "print(x)" });
    expect(JSON.stringify(cell.content)).toContain("5");

    const snap = await call(client, "snapshot_sandbox", { sandbox_id: id });
    expect(snap.isError, text(snap)).toBeFalsy();
    const snapshotId = snap.structuredContent!.id as string;
    const fork = await call(client, "create_sandbox", { snapshot_id: snapshotId });
    const forkId = fork.structuredContent!.sandbox_id as string;
    const read = await call(client, "read_file", { sandbox_id: forkId, path: "f.txt" });
    expect(JSON.stringify(read.content)).toContain("hi");
    for (const sandbox_id of [id, forkId]) await call(client, "destroy_sandbox", { sandbox_id });
  });
});
