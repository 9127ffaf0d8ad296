/**
 * One run path for REST, MCP and Piston (executions/run-code.ts): the same
 * static-analysis refusal through each, and a client that hangs up mid-run
 * leaves no sandbox running through each. Attacks are sent as a client would:
 * real keys, real HTTP on loopback, the MCP SDK client.
 */
import { request as httpRequest, type ClientRequest } from "node:http";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, eventually, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});

async function mcpClient(token: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "run-path-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

/** Code block mode refuses: it runs a shell command. */
const HOSTILE = "require('child_process').execSync('id')";

interface Finding {
  ruleId: string;
  severity: string;
  line: number;
  column: number;
}

describe("block mode, through every interface", () => {
  it("REST, MCP and Piston refuse the same code with the same finding, and nothing runs", async () => {
    const token = await createKey(server, "mal-block", "execute", "mal", undefined, "block");

    const rest = await server.request("POST", "/v1/executions", {
      token,
      body: { language: "javascript", code: HOSTILE },
    });
    expect(rest.status).toBe(422);
    const restBody = (await rest.json()) as {
      status: string;
      error: { code: string; message: string };
      findings: Finding[];
    };
    expect(restBody).toMatchObject({ status: "rejected", error: { code: "MALICIOUS_CODE" } });

    const client = await mcpClient(token);
    const mcp = (await client.callTool({
      name: "run_code",
      arguments: { language: "javascript", code: HOSTILE },
    })) as { isError?: boolean; structuredContent?: typeof restBody };
    await client.close();
    expect(mcp.isError).toBe(true);

    // Before the one run path, Piston ran this code: the policy never applied to it.
    const piston = await server.request("POST", "/api/v2/execute", {
      token,
      body: { language: "javascript", version: "*", files: [{ content: HOSTILE }] },
    });
    const pistonBody = (await piston.json()) as { message: string; findings?: Finding[] };
    expect(pistonBody, JSON.stringify(pistonBody)).not.toHaveProperty("run");
    expect(piston.status).toBe(422);

    // Piston sends files, so its findings also name the file (main.js).
    const high = (f: (Finding & { file?: string })[] | undefined): Finding[] =>
      (f ?? []).filter((x) => x.severity === "high").map(({ file: _file, ...x }) => x);
    expect(high(restBody.findings)).toEqual([
      expect.objectContaining({ ruleId: "process-exec", line: 1 }),
    ]);
    expect(high(mcp.structuredContent?.findings)).toEqual(high(restBody.findings));
    expect(high(pistonBody.findings)).toEqual(high(restBody.findings));
    expect(pistonBody.message).toBe(restBody.error.message);
    expect(mcp.structuredContent?.error.message).toBe(restBody.error.message);
    // Refused before the queue: no execution ran, each refusal is in the audit trail.
    expect(server.count("executions", "user_id = 'mal'")).toBe(0);
    expect(server.count("events", "user_id = 'mal' AND event = 'rejected'")).toBe(3);
  });
});

/** A run that would go on for a minute, printing as it goes. */
const LONG = "import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)";

async function activeExecutions(): Promise<number> {
  const res = await server.request("GET", "/api/sandbox/metrics");
  return ((await res.json()) as { activeExecutions: number }).activeExecutions;
}

/** Sends a JSON POST and leaves it waiting; the caller destroys it to hang up. */
function hangingPost(path: string, token: string, body: unknown): ClientRequest {
  const req = httpRequest(`${server.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  });
  req.on("error", () => undefined); // we hang up ourselves
  req.end(JSON.stringify(body));
  return req;
}

/** The user's one execution started, the client went, and then nothing of it runs. */
async function hangUpMidRun(user: string, hangUp: () => Promise<void> | void): Promise<void> {
  await eventually(
    async () => server.count("executions", `user_id = '${user}' AND status = 'running'`) === 1,
    30_000,
  );
  await hangUp();
  await eventually(
    async () => server.count("executions", `user_id = '${user}' AND status = 'killed'`) === 1,
    30_000,
  );
  await eventually(async () => (await activeExecutions()) === 0, 30_000);
  expect(server.count("events", `user_id = '${user}' AND event = 'killed'`)).toBe(1);
}

describe("a client that hangs up mid-run leaves no sandbox running", () => {
  it("REST", async () => {
    const token = await createKey(server, "rita", "execute", "rita");
    const req = hangingPost("/v1/executions", token, { language: "python", code: LONG });
    await hangUpMidRun("rita", () => void req.destroy());
  });

  it("Piston", async () => {
    // Before the one run path, this run went on for its whole timeout.
    const token = await createKey(server, "pia", "execute", "pia");
    const req = hangingPost("/api/v2/execute", token, {
      language: "python",
      version: "*",
      files: [{ content: LONG }],
      run_timeout: 120_000,
    });
    await hangUpMidRun("pia", () => void req.destroy());
  });

  it("MCP", async () => {
    const token = await createKey(server, "max", "execute", "max");
    const client = await mcpClient(token);
    const pending = client
      .callTool({ name: "run_code", arguments: { language: "python", code: LONG } })
      .catch(() => null);
    await hangUpMidRun("max", () => client.close());
    await pending;
  });
});
