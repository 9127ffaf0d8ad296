/**
 * `pip install` and `npm install` in a session that may reach the package
 * index (a loopback mirror here, as many teams run an internal one): the
 * session's own venv and npm prefix take the packages, the configured index
 * is where they come from, and a session without that allowance gets none.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeNpmTarball, makeWheel, PackageIndex } from "../helpers/package-index.js";
import { startServer, type TestServer } from "../helpers/server.js";

let index: PackageIndex;
let server: TestServer;
let packages: string;

beforeAll(async () => {
  packages = mkdtempSync(join(tmpdir(), "warden-session-pkgs-"));
  index = await PackageIndex.start();
  index.addWheel(
    makeWheel(packages, {
      name: "sessionpkg",
      version: "0.3.0",
      files: { "sessionpkg/__init__.py": "def greet():\n    return 'installed in a session'\n" },
    }),
  );
  index.addWheel(
    makeWheel(packages, {
      name: "cellpkg",
      version: "1.2.0",
      files: { "cellpkg/__init__.py": "ANSWER = 42\n" },
    }),
  );
  index.addNpm(
    makeNpmTarball(packages, {
      name: "warden-session-npm",
      version: "2.1.0",
      files: { "index.js": "module.exports = () => 'npm in a session';\n" },
    }),
  );
  server = await startServer({
    config: {
      environments: index.environmentsConfig(),
      network: { allow: [index.host], ports: [index.port], ...index.networkConfig() },
    },
  });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await index?.stop();
  rmSync(packages, { recursive: true, force: true });
});

async function session(network?: unknown): Promise<string> {
  const res = await server.request("POST", "/v1/sessions", {
    body: { language: "python", ...(network ? { network } : {}) },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function command(id: string, command: string): Promise<Record<string, unknown>> {
  const res = await server.request("POST", `/v1/sessions/${id}/commands`, {
    body: { command, timeout: 120 },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

async function cell(id: string, code: string): Promise<Record<string, unknown>> {
  const res = await server.request("POST", `/v1/sessions/${id}/run`, {
    body: { code, timeout: 120 },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe("installing from the configured index in a session", () => {
  it("pip install then import, npm install then require", async () => {
    const id = await session({ allow: [index.host] });
    const pip = await command(id, "pip install sessionpkg");
    expect(pip).toMatchObject({ status: "completed" });
    expect(pip.stdout).toMatch(/Successfully installed sessionpkg-0\.3\.0/);
    expect(index.requests).toContain("/simple/sessionpkg/");
    const used = await cell(id, "import sessionpkg\nsessionpkg.greet()");
    expect(used).toMatchObject({
      status: "completed",
      results: [{ data: { "text/plain": "'installed in a session'" }, isMainResult: true }],
    });

    const npm = await command(id, "npm install --no-audit --no-fund warden-session-npm");
    expect(npm).toMatchObject({ status: "completed" });
    const required = await command(id, "node -e \"console.log(require('warden-session-npm')())\"");
    expect(required.stdout).toBe("npm in a session\n");
    await server.request("DELETE", `/v1/sessions/${id}`);
  });

  it("%pip install in a cell installs into the session's venv, and the next cell imports it", async () => {
    const id = await session({ allow: [index.host] });
    const install = await cell(id, "%pip install cellpkg");
    expect(install).toMatchObject({ status: "completed", error: null });
    expect(install.stdout).toMatch(/Successfully installed cellpkg-1\.2\.0/);
    const used = await cell(
      id,
      "import cellpkg, sys\n(cellpkg.ANSWER, cellpkg.__file__.startswith(sys.prefix))",
    );
    expect(used).toMatchObject({ results: [{ data: { "text/plain": "(42, True)" } }] });
    const where = await command(id, "python3 -c 'import cellpkg, sys; print(sys.prefix)'");
    expect(where.stdout).toBe("/workspace/.venv\n");
    await server.request("DELETE", `/v1/sessions/${id}`);
  });

  it("gets nothing from the index without the session's own network allowance", async () => {
    const id = await session();
    const seen = index.requests.length;
    const pip = await command(id, "pip install --retries 0 --timeout 5 sessionpkg");
    expect(pip.status).toBe("failed");
    expect(pip.stderr).toMatch(/No matching distribution found for sessionpkg/);
    expect(index.requests.length).toBe(seen);
    await server.request("DELETE", `/v1/sessions/${id}`);
  });
});
