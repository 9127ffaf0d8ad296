/**
 * Environments as a new user meets them: `warden env create` (no service
 * running) from a loopback index, `warden env list`, then a real `warden
 * serve` where GET /v1/environments lists them and a one-shot run, a
 * session, a notebook and an MCP call import their packages; unknown names
 * are refused naming the field, and `warden env rm` refuses an environment
 * a live session holds.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { warden } from "../helpers/cli.js";
import { call } from "../mcp/drive.js";
import { makeNpmTarball, makeWheel, PackageIndex } from "../helpers/package-index.js";
import { startServer, type TestServer } from "../helpers/server.js";

let dataDir: string;
let configFile: string;
let index: PackageIndex;
let server: TestServer;
let env: Record<string, string>;
let wheelDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "warden-envsvc-"));
  wheelDir = mkdtempSync(join(tmpdir(), "warden-wheels-"));
  index = await PackageIndex.start();
  index.addWheel(
    makeWheel(wheelDir, {
      name: "wardenidx",
      version: "2.0.1",
      files: { "wardenidx/__init__.py": "VALUE = 'from-index'\n" },
    }),
  );
  index.addNpm(
    makeNpmTarball(wheelDir, {
      name: "warden-npm-demo",
      version: "1.4.0",
      files: { "index.js": "module.exports = { hello: () => 'npm-hello' };\n" },
    }),
  );
  const config = {
    environments: { ...index.environmentsConfig(), build: { diskMb: 256, memoryMb: 512 } },
    // The index's name is on the private-host list; other.warden.test also
    // answers 127.0.0.1 but is not: requests may name both, only one gets through.
    network: {
      allow: [index.host, "other.warden.test"],
      ports: [index.port],
      staticHosts: { ...index.networkConfig().staticHosts, "other.warden.test": "127.0.0.1" },
      privateHosts: index.networkConfig().privateHosts,
    },
    maxSessionsPerUser: 5,
  };
  configFile = `${dataDir}.json`;
  writeFileSync(configFile, JSON.stringify(config));
  env = { WARDEN_DATA_DIR: dataDir, WARDEN_CONFIG: configFile };
  const created = await warden(
    [
      "env",
      "create",
      "demo",
      "--python",
      "--pip",
      "wardenidx==2.0.1",
      "--node",
      "--npm",
      "warden-npm-demo",
    ],
    { env },
  );
  expect(created.stderr).not.toMatch(/internal error/);
  expect(created.code).toBe(0);
  expect(created.stdout).toMatch(/^created demo: python\+node, 2 packages/);
  server = await startServer({ dataDir, config });
}, 180_000);

afterAll(async () => {
  await server?.stop();
  await index?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(configFile, { force: true });
  rmSync(wheelDir, { recursive: true, force: true });
});

describe("environments through every interface", () => {
  it("lists them on the CLI and over REST", async () => {
    const list = await warden(["env", "list", "--json"], { env });
    const parsed = JSON.parse(list.stdout) as { environments: { name: string }[] };
    expect(parsed.environments.map((e) => e.name)).toEqual(["default", "demo"]);
    const table = await warden(["env", "list"], { env });
    expect(table.stdout).toMatch(/^NAME\s+LANGUAGES\s+PACKAGES/);
    expect(table.stdout).toMatch(/\ndemo\s+python\+node\s+2\s/);

    const res = await server.request("GET", "/v1/environments");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { environments: Record<string, unknown>[] };
    expect(body.environments[0]).toMatchObject({ name: "default", builtin: true });
    expect(body.environments[1]).toMatchObject({
      name: "demo",
      builtin: false,
      languages: ["python", "node"],
      packages: [
        { language: "python", name: "wardenidx", version: "2.0.1" },
        { language: "node", name: "warden-npm-demo", version: "1.4.0" },
      ],
    });
    expect(body.environments[1]!.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(body.environments[1]!.sizeBytes).toBeGreaterThan(0);
    expect(Date.parse(body.environments[1]!.createdAt as string)).toBeGreaterThan(0);
    const one = await server.request("GET", "/v1/environments/demo");
    expect(((await one.json()) as { name: string }).name).toBe("demo");
    const missing = await server.request("GET", "/v1/environments/nope");
    expect(missing.status).toBe(404);
  });

  it("imports in a one-shot run (REST and CLI) and refuses an unknown name", async () => {
    const res = await server.request("POST", "/v1/executions", {
      body: {
        language: "python",
        code: "import wardenidx; print(wardenidx.VALUE)",
        environment: "demo",
      },
    });
    const result = (await res.json()) as { stdout: string; stderr: string };
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("from-index\n");
    const unknown = await server.request("POST", "/v1/executions", {
      body: { language: "python", code: "print(1)", environment: "nope" },
    });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toMatch(
      /^environment: no environment named "nope"/,
    );
    const bad = await server.request("POST", "/v1/executions", {
      body: { language: "python", code: "print(1)", environment: "../etc" },
    });
    expect(bad.status).toBe(400);
    const cli = await warden(["run", "-", "-l", "javascript", "--environment", "demo"], {
      env,
      input: "console.log(require('warden-npm-demo').hello())",
    });
    expect(cli.stdout).toBe("npm-hello\n");
  });

  it("imports in a notebook and an MCP call", async () => {
    const nb = {
      nbformat: 4,
      nbformat_minor: 4,
      metadata: {},
      cells: [
        {
          cell_type: "code",
          metadata: {},
          source: "import wardenidx\nprint(wardenidx.VALUE)",
          outputs: [],
          execution_count: null,
        },
      ],
    };
    const run = await server.request("POST", "/v1/notebooks", {
      body: { notebook: nb, environment: "demo" },
    });
    const done = (await run.json()) as {
      summary: { cellsFailed: number };
      notebook: { cells: { outputs: { text?: string }[] }[] };
    };
    expect(done.summary.cellsFailed).toBe(0);
    expect(done.notebook.cells[0]!.outputs[0]!.text).toBe("from-index\n");
    const refused = await server.request("POST", "/v1/notebooks", {
      body: { notebook: nb, environment: "nope" },
    });
    expect(refused.status).toBe(404);

    const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${server.adminToken}` } },
    });
    const client = new Client({ name: "warden-test", version: "1.0.0" });
    await client.connect(transport);
    try {
      const ran = await call(client, "run_code", {
        language: "python",
        code: "import wardenidx; print(wardenidx.VALUE)",
        environment: "demo",
      });
      expect(ran.structuredContent!.stdout).toBe("from-index\n");
      const box = await call(client, "create_sandbox", {
        language: "javascript",
        environment: "demo",
      });
      const cell = await call(client, "run_in_sandbox", {
        sandbox_id: box.structuredContent!.sandbox_id as string,
        code: "require('warden-npm-demo').hello()",
      });
      expect(JSON.stringify(cell.content)).toMatch(/npm-hello/);
      await client.callTool({
        name: "destroy_sandbox",
        arguments: { sandbox_id: box.structuredContent!.sandbox_id as string },
      });
    } finally {
      await client.close();
    }
  }, 120_000);

  it("imports in a session, and env rm refuses it while the session lives", async () => {
    const created = await server.request("POST", "/v1/sessions", { body: { environment: "demo" } });
    expect(created.status).toBe(201);
    const session = (await created.json()) as { id: string; environment: string };
    expect(session.environment).toBe("demo");
    const cell = await server.request("POST", `/v1/sessions/${session.id}/run`, {
      body: { code: "import wardenidx\nwardenidx.VALUE" },
    });
    expect(JSON.stringify(await cell.json())).toMatch(/from-index/);

    const refused = await warden(["env", "rm", "demo"], { env });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(
      /environment "demo" is in use by a running execution or live session/,
    );
    expect((await server.request("GET", "/v1/environments/demo")).status).toBe(200);

    await server.request("DELETE", `/v1/sessions/${session.id}`);
    const unknown = await server.request("POST", "/v1/sessions", { body: { environment: "nope" } });
    expect(unknown.status).toBe(404);
    const removed = await warden(["env", "rm", "demo"], { env });
    expect(removed.stderr).toBe("removed environment demo\n");
    expect(removed.code).toBe(0);
    expect((await server.request("GET", "/v1/environments/demo")).status).toBe(404);
  }, 120_000);

  it("lets only the configured private host reach the loopback; a request cannot add one", async () => {
    const fetchFrom = (host: string) =>
      server.request("POST", "/v1/executions", {
        body: {
          language: "python",
          code: [
            "import urllib.request",
            "try:",
            `    print(urllib.request.urlopen('http://${host}:${index.port}/simple/', timeout=10).status)`,
            "except Exception as e:",
            "    print('refused', e)",
          ].join("\n"),
          network: { allow: [host] },
        },
      });
    const listed = (await (await fetchFrom(index.host)).json()) as { stdout: string };
    expect(listed.stdout).toBe("200\n");
    const unlisted = (await (await fetchFrom("other.warden.test")).json()) as { stdout: string };
    expect(unlisted.stdout).toMatch(/^refused/);
    const seen = index.requests.length;
    // A request cannot widen the private-host list: the field does not exist for it.
    const widened = await server.request("POST", "/v1/executions", {
      body: {
        language: "python",
        code: "print(1)",
        network: { allow: ["other.warden.test"], privateHosts: ["other.warden.test"] },
      },
    });
    expect(widened.status).toBe(400);
    const session = await server.request("POST", "/v1/sessions", {
      body: { network: { allow: ["other.warden.test"], privateHosts: ["other.warden.test"] } },
    });
    expect(session.status).toBe(400);
    expect(index.requests.length).toBe(seen);
    expect((await server.request("GET", "/healthz")).status).toBe(200);
  }, 60_000);
});
