/**
 * MCP over streamable HTTP at `/mcp` on a real `warden serve`: the SDK's
 * Client with a bearer key; refusals of missing and wrong keys, forged Host
 * and Origin; sandboxes as the key's user's ordinary sessions.
 */
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, eventually, startServer, type TestServer } from "../helpers/server.js";
import {
  call,
  drivesASandbox,
  inspectorListsAndCalls,
  keepsFilesInside,
  listsEveryTool,
  runsCodeOnce,
  text,
  TICKING,
} from "./drive.js";

let server: TestServer;
let ann: string;
let carl: string;
const clients: Client[] = [];

async function connect(token: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "warden-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return client;
}

beforeAll(async () => {
  server = await startServer({
    config: {
      maxSessionsPerUser: 2,
      maxStdinBytes: 1024,
      server: { allowedHosts: ["Warden.Example.com:443"] },
    },
  });
  ann = await createKey(server, "ann-agent", "execute,sessions", "ann");
  carl = await createKey(server, "carl-exec", "execute", "carl");
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.stop();
});

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "raw", version: "0" },
  },
};

/** A raw POST /mcp with headers fetch would not let us forge (Host). */
function post(headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const url = new URL(`${server.url}/mcp`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: "/mcp",
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...headers,
        },
      },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(INITIALIZE));
  });
}

describe("MCP over streamable HTTP (/mcp)", () => {
  it("serves every tool to the SDK client, as the key's user", async () => {
    const client = await connect(ann);
    await listsEveryTool(client);
    await runsCodeOnce(client);
    await drivesASandbox(client, server.url);
    await keepsFilesInside(client);
  });

  it("refuses a missing or wrong key (401), a forged Host or Origin (403)", async () => {
    const host = new URL(server.url).host;
    const bearer = { authorization: `Bearer ${ann}` };
    expect((await post({})).status).toBe(401);
    expect((await post({ authorization: "Bearer not-a-key-0123456789" })).status).toBe(401);
    const forgedHost = await post({ ...bearer, host: "evil.example:80" });
    expect(forgedHost.status).toBe(403);
    expect(JSON.parse(forgedHost.body)).toMatchObject({ error: { code: "PERMISSION_DENIED" } });
    expect(
      (await post({ ...bearer, host: `attacker.example:${new URL(server.url).port}` })).status,
    ).toBe(403);
    expect((await post({ ...bearer, origin: "http://evil.example" })).status).toBe(403);
    expect(
      (await post({ ...bearer, origin: `http://evil.example:${new URL(server.url).port}` })).status,
    ).toBe(403);
    // The same request from our own origin, and from a client that sends none, is served.
    expect((await post({ ...bearer, origin: `http://${host}` })).status).toBe(200);
    expect((await post({ ...bearer, host: `localhost:${new URL(server.url).port}` })).status).toBe(
      200,
    );
    // A configured public name, as a client behind TLS sends it (default port left out).
    expect(
      (await post({ ...bearer, host: "warden.example.com", origin: "https://warden.example.com" }))
        .status,
    ).toBe(200);
    expect((await server.request("GET", "/mcp", { token: ann })).status).toBe(405);
    expect(server.count("events", "event = 'forbidden'")).toBeGreaterThanOrEqual(4);
  });

  it("gives tools only the key's scopes; sandboxes are the user's own sessions, within their limits", async () => {
    const carlClient = await connect(carl);
    const denied = await call(carlClient, "create_sandbox");
    expect(denied.isError).toBe(true);
    expect(text(denied)).toMatch(/^PERMISSION_DENIED: /);
    expect(
      (await call(carlClient, "run_code", { language: "python", code: "print(1)" })).isError,
    ).toBeFalsy();

    const annClient = await connect(ann);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++)
      ids.push((await call(annClient, "create_sandbox")).structuredContent?.sandbox_id as string);
    // maxSessionsPerUser is 2: MCP sandboxes count like any session of ann's.
    const third = await call(annClient, "create_sandbox");
    expect(text(third)).toMatch(/^QUOTA_EXCEEDED: /);
    const listed = (await (await server.request("GET", "/v1/sessions", { token: ann })).json()) as {
      id: string;
      userId: string;
    }[];
    expect(listed.map((s) => s.id).sort()).toEqual([...ids].sort());
    expect(listed.every((s) => s.userId === "ann")).toBe(true);
    // Another user's client cannot reach them.
    const other = await call(
      await connect(await createKey(server, "bob", "sessions", "bob")),
      "exec_command",
      {
        sandbox_id: ids[0],
        command: "true",
      },
    );
    expect(text(other)).toMatch(/^NOT_FOUND: /);
    for (const id of ids) await call(annClient, "destroy_sandbox", { sandbox_id: id });
  });

  it("applies the key's static-analysis policy to run_code, as POST /v1/executions does", async () => {
    const client = await connect(
      await createKey(server, "dee-block", "execute", "dee", undefined, "block"),
    );
    // `nodejs` is an alias of javascript: aliases are no way around block mode.
    const refused = await call(client, "run_code", {
      language: "nodejs",
      code: "require('child_process').execSync('id')",
    });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatch(/MALICIOUS_CODE: refused by policy/);
    expect(text(refused)).toMatch(/process-exec/);
    expect(refused.structuredContent).toMatchObject({
      status: "rejected",
      error: { code: "MALICIOUS_CODE" },
      findings: expect.arrayContaining([
        expect.objectContaining({ ruleId: "process-exec", severity: "high" }),
      ]),
    });
    expect(server.count("executions", "user_id = 'dee'")).toBe(0);
    expect(server.count("events", "user_id = 'dee' AND event = 'rejected'")).toBe(1);

    const clean = await call(client, "run_code", { language: "python", code: "print(6 * 7)" });
    expect(clean.isError).toBeFalsy();
    expect(clean.structuredContent).toMatchObject({ stdout: "42\n", findings: [] });
  });

  it("refuses run_code stdin past maxStdinBytes, naming the limit", async () => {
    const client = await connect(carl);
    const answer = await call(client, "run_code", {
      language: "python",
      code: "print(1)",
      stdin: "x".repeat(2048),
    }).catch((error: unknown) => ({
      isError: true,
      content: [{ type: "text", text: String(error) }],
    }));
    expect(answer.isError).toBe(true);
    expect(text(answer)).toMatch(/stdin: must be at most 1024 bytes \(maxStdinBytes\)/);
  });

  it("kills a run whose client cancels it", async () => {
    const client = await connect(ann);
    const abort = new AbortController();
    let progressed = 0;
    const pending = client.callTool(
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
        onprogress: () => {
          if (++progressed === 2) abort.abort();
        },
      },
    );
    await expect(pending).rejects.toThrow();
    await eventually(
      async () => server.count("executions", "user_id = 'ann' AND status = 'killed'") === 1,
    );
  });

  it("lists and calls tools from the MCP Inspector CLI over HTTP, behind a gateway that adds the key", async () => {
    // Inspector 0.15 (the last for Node 20) cannot send headers; a gateway in front
    // adding the key is also how a team would put a header-less client on Warden.
    const target = new URL(server.url);
    const gateway = createServer((req, res) => {
      const up = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: target.host, authorization: `Bearer ${ann}` },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      up.on("error", () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/mcp`;
    try {
      await inspectorListsAndCalls([url, "--transport", "http"]);
    } finally {
      await new Promise((resolve) => gateway.close(resolve));
    }
  }, 60_000);
});
