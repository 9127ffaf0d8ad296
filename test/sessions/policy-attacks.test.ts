/**
 * A key in block mode tries to run what its policy refuses through a session
 * instead of an execution: a cell over REST, a cell over MCP, a shell command
 * (foreground, background, MCP exec_command) and a notebook `!cmd` line. Each
 * is refused and audited, and nothing runs: the program would leave a file in
 * /workspace, and the files API shows it is not there. In audit mode the same
 * cell runs and comes back with its findings. Real `warden serve`, real keys.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let blockKey: string;
let auditKey: string;
const clients: Client[] = [];

beforeAll(async () => {
  server = await startServer({ config: { maxSessionsPerUser: 4 } });
  blockKey = await createKey(server, "mal-block", "execute,sessions", "mal", undefined, "block");
  auditKey = await createKey(server, "aud-audit", "execute,sessions", "aud", undefined, "audit");
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.stop();
});

/** Leaves its mark, then runs a shell command: block mode refuses it (process-exec). */
const HOSTILE = "open('/workspace/pwned.txt', 'w').write('ran')\nimport os\nos.system('id')";

interface Finding {
  ruleId: string;
  severity: string;
  line: number;
}

async function mcp(token: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "policy-attacks", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return client;
}

async function newSession(token: string): Promise<string> {
  const res = await server.request("POST", "/v1/sessions", { token, body: {} });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** Whether `name` exists in the session's /workspace, through the files API. */
async function exists(token: string, session: string, name: string): Promise<boolean> {
  const res = await server.request("GET", `/v1/sessions/${session}/files/${name}`, { token });
  expect([200, 404]).toContain(res.status);
  return res.status === 200;
}

const rejections = (user: string): number =>
  server.count("events", `user_id = '${user}' AND event = 'rejected'`);

describe("block mode: a session is no way around the policy", () => {
  it("refuses the same program as an execution, a REST cell and an MCP cell; none runs", async () => {
    const exec = await server.request("POST", "/v1/executions", {
      token: blockKey,
      body: { language: "python", code: HOSTILE },
    });
    expect(exec.status).toBe(422);
    const refusedExec = (await exec.json()) as {
      status: string;
      error: { code: string; message: string };
      findings: Finding[];
    };
    expect(refusedExec).toMatchObject({ status: "rejected", error: { code: "MALICIOUS_CODE" } });
    const before = rejections("mal");

    const session = await newSession(blockKey);
    const cell = await server.request("POST", `/v1/sessions/${session}/run`, {
      token: blockKey,
      body: { code: HOSTILE },
    });
    const refusedCell = (await cell.json()) as typeof refusedExec;
    expect(cell.status, JSON.stringify(refusedCell)).toBe(422);
    // The execution's refusal, word for word: status, code, message and findings.
    expect(refusedCell).toMatchObject({ status: "rejected", success: false });
    expect(refusedCell.error).toEqual(refusedExec.error);
    expect(refusedCell.findings).toEqual(refusedExec.findings);
    expect(refusedCell.findings).toContainEqual(
      expect.objectContaining({ ruleId: "process-exec", severity: "high", line: 3 }),
    );

    // The same with a javascript cell, and a language alias.
    const js = await server.request("POST", `/v1/sessions/${session}/run`, {
      token: blockKey,
      body: {
        language: "node",
        code: "require('fs').writeFileSync('/workspace/pwned.txt', 'ran'); require('child_process').execSync('id')",
      },
    });
    expect(js.status).toBe(422);

    const client = await mcp(blockKey);
    const viaMcp = (await client.callTool({
      name: "run_in_sandbox",
      arguments: { sandbox_id: session, code: HOSTILE },
    })) as { isError?: boolean; content: { type: string; text?: string }[] };
    expect(viaMcp.isError).toBe(true);
    expect(viaMcp.content[0]?.text).toContain("MALICIOUS_CODE");
    expect(viaMcp.content[0]?.text).toContain(refusedExec.error.message);

    expect(await exists(blockKey, session, "pwned.txt")).toBe(false);
    expect(rejections("mal") - before).toBe(3);
    // A harmless cell still runs: the session is usable, only the refused code is not.
    const ok = await server.request("POST", `/v1/sessions/${session}/run`, {
      token: blockKey,
      body: { code: "print(6 * 7)" },
    });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { stdout: string }).stdout).toBe("42\n");
  });

  it("refuses raw shell commands: foreground, background and MCP exec_command; none runs", async () => {
    const session = await newSession(blockKey);
    const before = rejections("mal");
    for (const background of [false, true]) {
      const res = await server.request("POST", `/v1/sessions/${session}/commands`, {
        token: blockKey,
        body: { command: "echo ran > /workspace/pwned.txt", background },
      });
      expect(res.status).toBe(403);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("PERMISSION_DENIED");
      expect(body.error.message).toContain("policy.sessionCommands");
    }
    // argv is no way around it: python3 -c runs what a cell may not.
    const argv = await server.request("POST", `/v1/sessions/${session}/commands`, {
      token: blockKey,
      body: { command: ["python3", "-c", HOSTILE] },
    });
    expect(argv.status).toBe(403);

    const client = await mcp(blockKey);
    const viaMcp = (await client.callTool({
      name: "exec_command",
      arguments: { sandbox_id: session, command: "echo ran > /workspace/pwned.txt" },
    })) as { isError?: boolean; content: { type: string; text?: string }[] };
    expect(viaMcp.isError).toBe(true);
    expect(viaMcp.content[0]?.text).toContain("PERMISSION_DENIED");

    expect(await exists(blockKey, session, "pwned.txt")).toBe(false);
    const list = await server.request("GET", `/v1/sessions/${session}/commands`, {
      token: blockKey,
    });
    expect(await list.json()).toEqual([]); // no background command was started
    expect(rejections("mal") - before).toBe(4);
  });

  it("refuses a notebook with a `!cmd` line; none of it runs", async () => {
    const notebook = {
      nbformat: 4,
      nbformat_minor: 4,
      metadata: {},
      cells: ["print('hello')", "!echo ran > /workspace/pwned.txt"].map((source) => ({
        cell_type: "code",
        metadata: {},
        source,
        outputs: [],
        execution_count: null,
      })),
    };
    const res = await server.request("POST", "/v1/notebooks", {
      token: blockKey,
      body: { notebook },
    });
    const run = (await res.json()) as {
      status: string;
      summary: { cellsRun: number; findings: Finding[] };
    };
    expect(res.status, JSON.stringify(run)).toBe(422);
    expect(run.status).toBe("rejected");
    expect(run.summary.cellsRun).toBe(0);
    expect(run.summary.findings).toContainEqual(
      expect.objectContaining({ ruleId: "ipython-shell", severity: "high" }),
    );
  });
});

describe("audit mode", () => {
  it("runs the cell, returns its findings and records them", async () => {
    const session = await newSession(auditKey);
    const before = server.count("events", "user_id = 'aud' AND event = 'policy_findings'");
    const res = await server.request("POST", `/v1/sessions/${session}/run`, {
      token: auditKey,
      body: { code: HOSTILE },
    });
    expect(res.status).toBe(200);
    const cell = (await res.json()) as { status: string; findings?: Finding[] };
    expect(cell.status).toBe("completed");
    expect(cell.findings).toContainEqual(
      expect.objectContaining({ ruleId: "process-exec", severity: "high", line: 3 }),
    );
    expect(await exists(auditKey, session, "pwned.txt")).toBe(true);

    // A command runs too, and is on the record as one block mode would refuse.
    const cmd = await server.request("POST", `/v1/sessions/${session}/commands`, {
      token: auditKey,
      body: { command: "echo ok" },
    });
    expect(cmd.status).toBe(200);
    expect(server.count("events", "user_id = 'aud' AND event = 'policy_findings'") - before).toBe(
      2,
    );

    const client = await mcp(auditKey);
    const viaMcp = (await client.callTool({
      name: "run_in_sandbox",
      arguments: { sandbox_id: session, code: "import subprocess\nsubprocess.run(['true'])" },
    })) as { isError?: boolean; structuredContent?: { findings?: Finding[] } };
    expect(viaMcp.isError).toBeFalsy();
    expect(viaMcp.structuredContent?.findings).toContainEqual(
      expect.objectContaining({ ruleId: "process-exec", severity: "high" }),
    );
    expect((await server.request("GET", "/healthz")).status).toBe(200);
  });
});
