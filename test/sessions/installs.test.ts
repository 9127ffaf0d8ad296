/**
 * Installing in a session: pip and npm write into the session's own workspace
 * (a venv layered on the system's Python, an npm prefix), never into the
 * system, and what they install counts against the session's disk limit.
 * Offline: packages are made inside the session itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { loadConfig } from "../../src/config/load.js";
import { SessionManager } from "../../src/sessions/manager.js";
import { testHost } from "../helpers/sandbox.js";

const config = loadConfig({ env: {}, overrides: { maxSessionsPerUser: 20 } });
let manager: SessionManager;

beforeAll(async () => {
  manager = new SessionManager(config, await testHost(), silentLogger, { audit: () => {} });
});
afterAll(async () => {
  await manager?.closeAll();
});

/** A Python program that writes a minimal wheel of `name` (one module, plus `pad` bytes of data). */
function makeWheel(name: string, pad = 0): string {
  return [
    "import base64, hashlib, sys, zipfile",
    `name, pad = ${JSON.stringify(name)}, ${pad}`,
    "files = {f'{name}/__init__.py': f'VALUE = {name!r}\\n'.encode()}",
    "if pad: files[f'{name}/pad.bin'] = bytes(pad)",
    "info = f'{name}-1.0.dist-info'",
    "files[f'{info}/METADATA'] = f'Metadata-Version: 2.1\\nName: {name}\\nVersion: 1.0\\n'.encode()",
    "files[f'{info}/WHEEL'] = b'Wheel-Version: 1.0\\nGenerator: warden-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n'",
    "digest = lambda b: 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()",
    "record = ''.join(f'{p},{digest(b)},{len(b)}\\n' for p, b in files.items()) + f'{info}/RECORD,,\\n'",
    "with zipfile.ZipFile(f'{name}-1.0-py3-none-any.whl', 'w') as z:",
    "    for p, b in files.items(): z.writestr(p, b)",
    "    z.writestr(f'{info}/RECORD', record)",
  ].join("\n");
}

describe("installing in a session", () => {
  it("has a venv on top of the system's Python: pip installs into the workspace and the next cell imports it", async () => {
    const s = await manager.create("ivy");
    const where = await manager.command(s.id, "ivy", {
      command: "python3 -c 'import sys; print(sys.prefix)'; command -v pip; echo $VIRTUAL_ENV",
    });
    expect(where.stdout).toBe("/workspace/.venv\n/workspace/.venv/bin/pip\n/workspace/.venv\n");
    // The kernel is the venv's python too, so %pip and `pip` install where it imports from.
    const kernel = await manager.run(s.id, "ivy", { code: "import sys; sys.prefix" });
    expect(kernel.results[0]?.data["text/plain"]).toBe("'/workspace/.venv'");

    await manager.writeFile(s.id, "ivy", "make.py", Buffer.from(makeWheel("hello_warden")));
    const install = await manager.command(s.id, "ivy", {
      command: "python3 make.py && pip install --no-index hello_warden-1.0-py3-none-any.whl",
      timeout: 60,
    });
    expect(install.stderr).toBe("");
    expect(install).toMatchObject({ status: "completed" });
    expect(install.stdout).toMatch(/Successfully installed hello[-_]warden-1\.0/);
    const listed = await manager.listFiles(s.id, "ivy", ".venv/lib/python3.11/site-packages");
    expect(listed.map((e) => e.name)).toContain("hello_warden");
    // The context started before the install imports it: its site dir was there from the start.
    const used = await manager.run(s.id, "ivy", {
      code: "import hello_warden\nhello_warden.VALUE",
    });
    expect(used.results[0]?.data["text/plain"]).toBe("'hello_warden'");
    await manager.destroy(s.id, "ivy", "test");
  });

  it("never writes the system's Python: outside the venv pip refuses (PEP 668), and /usr is read-only anyway", async () => {
    const s = await manager.create("ivy");
    await manager.writeFile(s.id, "ivy", "make.py", Buffer.from(makeWheel("sys_wide")));
    const system = await manager.command(s.id, "ivy", {
      command:
        "python3 make.py && /usr/bin/python3 -m pip install --no-index sys_wide-1.0-py3-none-any.whl",
      timeout: 60,
    });
    expect(system.status).toBe("failed");
    expect(system.stderr).toContain("externally-managed-environment");
    const forced = await manager.command(s.id, "ivy", {
      command:
        "/usr/bin/python3 -m pip install --no-index --break-system-packages --target /usr/lib/python3/dist-packages sys_wide-1.0-py3-none-any.whl",
      timeout: 60,
    });
    expect(forced.status).toBe("failed");
    expect(forced.stderr).toMatch(/Read-only file system|Permission denied/);
    await manager.destroy(s.id, "ivy", "test");
  });

  it("counts what is installed against the session's disk limit", async () => {
    const s = await manager.create("ivy", { limits: { diskMb: 16 } });
    await manager.writeFile(s.id, "ivy", "make.py", Buffer.from(makeWheel("too_big", 24 << 20)));
    // The wheel compresses zeros to nothing; installing writes all 24 MiB into a 16 MiB workspace.
    const install = await manager.command(s.id, "ivy", {
      command: "python3 make.py && pip install --no-index too_big-1.0-py3-none-any.whl",
      timeout: 60,
    });
    expect(install.status).toBe("failed");
    expect(install.stderr).toMatch(/No space left on device/);
    // The session goes on.
    expect((await manager.command(s.id, "ivy", { command: "echo alive" })).stdout).toBe("alive\n");
    await manager.destroy(s.id, "ivy", "test");
  });

  it("installs npm packages globally into the session's own prefix, where require finds them", async () => {
    const s = await manager.create("ivy");
    const pkg = JSON.stringify({ name: "warden-hello", version: "1.0.0", main: "index.js" });
    await manager.writeFile(s.id, "ivy", "pkg/package.json", Buffer.from(pkg));
    await manager.writeFile(
      s.id,
      "ivy",
      "pkg/index.js",
      Buffer.from("module.exports = 'hi from npm';\n"),
    );
    const install = await manager.command(s.id, "ivy", {
      command:
        "cd pkg && npm pack --silent && npm install -g --offline --no-audit --no-fund ./warden-hello-1.0.0.tgz",
      timeout: 120,
    });
    expect(install).toMatchObject({ status: "completed" });
    const listed = await manager.listFiles(s.id, "ivy", ".npm-global/lib/node_modules");
    expect(listed.map((e) => e.name)).toContain("warden-hello");
    const used = await manager.command(s.id, "ivy", {
      command: ["node", "-e", "console.log(require('warden-hello'))"],
    });
    expect(used.stdout).toBe("hi from npm\n");
    await manager.destroy(s.id, "ivy", "test");
  });
});
