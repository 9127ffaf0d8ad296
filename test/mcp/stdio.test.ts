/**
 * `warden mcp` as a real MCP client starts it: the SDK's Client over stdio,
 * and the MCP Inspector's CLI mode. When the client goes, its sandboxes go.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processStartTicks } from "../../src/sandbox/owner.js";
import { cgroupDirsOf, processesOfUid, testHost } from "../helpers/sandbox.js";
import { eventually } from "../helpers/server.js";
import {
  call,
  drivesASandbox,
  inspectorListsAndCalls,
  keepsFilesInside,
  listsEveryTool,
  runsCodeOnce,
  TICKING,
} from "./drive.js";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "bin", "warden.js");

async function connect(
  env: Record<string, string> = {},
): Promise<{ client: Client; transport: StdioClientTransport; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [bin, "mcp"],
    cwd: root,
    env: {
      ...(process.env as Record<string, string>),
      WARDEN_LOG_LEVEL: "warn",
      WARDEN_POOL: "false",
      ...env,
    },
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: "warden-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport, stderr: () => stderr };
}

let dataDir: string;
let main: Awaited<ReturnType<typeof connect>>;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "warden-mcp-test-"));
  main = await connect({ WARDEN_DATA_DIR: dataDir });
});
afterAll(async () => {
  await main?.client.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function executionStatus(id: string): string | undefined {
  const db = new Database(join(dataDir, "warden.db"), { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare("SELECT status FROM executions WHERE id = ?").get(id) as
        { status: string } | undefined
    )?.status;
  } finally {
    db.close();
  }
}

describe("warden mcp (stdio)", () => {
  it("lists every tool with schemas and hints, and runs code once", async () => {
    await listsEveryTool(main.client);
    await runsCodeOnce(main.client);
  });

  it("applies the server's policy mode to run_code (python's __import__ resolved)", async () => {
    const blocked = await connect({ WARDEN_POLICY_MODE: "block" }); // a private data dir
    try {
      const refused = await call(blocked.client, "run_code", {
        language: "python",
        code: "__import__('os').system('id')",
      });
      expect(refused.isError).toBe(true);
      expect(refused.structuredContent).toMatchObject({
        status: "rejected",
        error: { code: "MALICIOUS_CODE" },
        findings: expect.arrayContaining([expect.objectContaining({ ruleId: "process-exec" })]),
      });
    } finally {
      await blocked.client.close();
    }
  });

  it("drives a sandbox through every sandbox tool (a matplotlib plot comes back as an image)", async () => {
    await drivesASandbox(main.client, null);
  });

  it("keeps read_file inside the sandbox: '..' is refused, planted symlinks reach no host file", async () => {
    await keepsFilesInside(main.client);
  });

  it("streams output as progress notifications and kills a run the client cancels", async () => {
    const messages: string[] = [];
    const abort = new AbortController();
    const pending = main.client.callTool(
      {
        name: "run_code",
        arguments: {
          language: "python",
          code: TICKING,
        },
      },
      undefined,
      {
        signal: abort.signal,
        onprogress: (p) => {
          messages.push(p.message ?? "");
          if (messages.length === 3) abort.abort();
        },
      },
    );
    await expect(pending).rejects.toThrow();
    expect(messages[0]).toBe("stdout: tick 0\n");
    const db = new Database(join(dataDir, "warden.db"), { readonly: true, fileMustExist: true });
    const id = (
      db.prepare("SELECT id FROM executions ORDER BY created_at DESC LIMIT 1").get() as {
        id: string;
      }
    ).id;
    db.close();
    await eventually(async () => executionStatus(id) === "killed");
  });

  it("refuses a data dir another Warden holds, with a message that says what to do", () => {
    const other = spawnSync(process.execPath, [bin, "mcp", "--data-dir", dataDir], {
      input: "",
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(other.status).toBe(2);
    expect(other.stderr).toMatch(
      /another Warden \(pid \d+\) is using .*give warden mcp a data dir of its own/,
    );
  });

  it("destroys every sandbox of a client that disconnects, then exits", async () => {
    const host = await testHost();
    const privateDirs = (): string[] =>
      readdirSync(tmpdir()).filter(
        (n) => n.startsWith("warden-mcp-") && !n.startsWith("warden-mcp-test-"),
      );
    const before = privateDirs().length;
    const { client, transport } = await connect(); // no data dir: a private temporary one
    const pid = transport.pid!;
    const tag = `b${pid}-${processStartTicks(pid)}`;
    for (let i = 0; i < 2; i++) {
      const id = (await call(client, "create_sandbox")).structuredContent?.sandbox_id as string;
      await call(client, "exec_command", {
        sandbox_id: id,
        command: "nohup sleep 600 > /dev/null 2>&1 &",
      });
    }
    // Each box: its directory and its preview socket beside it.
    const boxes = readdirSync(host.runDir.boxes).filter(
      (n) => n.startsWith(tag) && !n.endsWith("-preview"),
    );
    expect(boxes).toHaveLength(2);
    const leases = readdirSync(host.runDir.uids).filter((uid) =>
      readFileSync(join(host.runDir.uids, uid), "utf8").startsWith(tag),
    );
    expect(leases).toHaveLength(2);
    expect(cgroupDirsOf(host, tag).length).toBeGreaterThan(0);

    await client.close(); // closes the server's stdin
    await eventually(async () => !existsSync(`/proc/${pid}`), 30_000);
    expect(readdirSync(host.runDir.boxes).filter((n) => n.startsWith(tag))).toEqual([]);
    expect(cgroupDirsOf(host, tag)).toEqual([]);
    expect(readFileSync("/proc/self/mountinfo", "utf8").includes(tag)).toBe(false);
    for (const uid of leases) {
      const lease = join(host.runDir.uids, uid);
      const holder = existsSync(lease) ? readFileSync(lease, "utf8") : null;
      if (holder !== null && !holder.startsWith(tag)) continue; // reused by another test's box
      expect(holder).toBeNull();
      expect(processesOfUid(Number(uid))).toEqual([]);
    }
    expect(privateDirs().length).toBe(before);
  });

  it("lists and calls tools from the MCP Inspector in CLI mode", async () => {
    await inspectorListsAndCalls([process.execPath, bin, "mcp"]);
  });
});
