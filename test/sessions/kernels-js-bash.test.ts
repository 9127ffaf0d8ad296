/**
 * JavaScript and TypeScript cells (top-level await, `import`, types
 * stripped) and the persistent bash context, in real sessions.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { loadConfig } from "../../src/config/load.js";
import { SessionManager } from "../../src/sessions/manager.js";
import type { CellResult } from "../../src/sessions/types.js";
import { testHost } from "../helpers/sandbox.js";

const config = loadConfig({ env: {}, overrides: { maxSessionsPerUser: 10 } });
let manager: SessionManager;

beforeAll(async () => {
  manager = new SessionManager(config, await testHost(), silentLogger, { audit: () => {} });
});
afterAll(async () => {
  await manager?.closeAll();
});

const main = (cell: CellResult): string | undefined =>
  cell.results.find((r) => r.isMainResult)?.data["text/plain"];

describe("JavaScript and TypeScript cells", () => {
  let id = "";
  const run = (code: string, language = "javascript", timeout = 30): Promise<CellResult> =>
    manager.run(id, "js", { code, language, timeout });

  beforeAll(async () => {
    id = (await manager.create("js", { language: "javascript" })).id;
  });

  it("runs top-level await, and its declarations persist", async () => {
    const cell = await run(
      "const wait = (ms) => new Promise((r) => setTimeout(r, ms));\nawait wait(5);\nconst { a, b: [c] } = await Promise.resolve({ a: 1, b: [2] });\nfunction sum() { return a + c; }\nclass K { v() { return 3; } }\nsum()",
    );
    expect(cell.error).toBeNull();
    expect(main(cell)).toBe("3");
    expect(main(await run("sum() + new K().v()"))).toBe("6");
  });

  it("imports node: built-ins, statically and dynamically, and again in a later cell", async () => {
    const cell = await run(
      'import path from "node:path";\nimport { join as j } from "node:path";\nimport * as os from "node:os";\npath.basename(j("/x", "y.txt")) + (typeof os.cpus)',
    );
    expect(cell.error).toBeNull();
    expect(main(cell)).toBe("'y.txtfunction'");
    const again = await run(
      'import path from "node:path";\nconst fsm = await import("node:fs");\ntypeof fsm.readFileSync + path.sep',
    );
    expect(main(again)).toBe("'function/'");
  });

  it("imports a module of the workspace by relative path", async () => {
    await manager.command(id, "js", {
      command:
        "echo 'export const answer = 42;' > lib.mjs; mkdir -p node_modules/pkg; echo 'module.exports = { six: 6 };' > node_modules/pkg/index.js",
    });
    const cell = await run('import { answer } from "./lib.mjs";\nanswer');
    expect(cell.error).toBeNull();
    expect(main(cell)).toBe("42");
    // A package of the workspace: by import (named export of CommonJS) and by require.
    const pkg = await run('import { six } from "pkg";\nsix * require("pkg").six');
    expect(main(pkg)).toBe("36");
  });

  it("runs TypeScript cells with their types stripped, in the same context", async () => {
    const cell = await run(
      "interface Point { x: number; y: number }\nconst p: Point = { x: 3, y: 4 };\nconst norm = (q: Point): number => Math.hypot(q.x, q.y);\nawait Promise.resolve(norm(p))",
      "typescript",
    );
    expect(cell.error).toBeNull();
    expect(main(cell)).toBe("5");
    // The JavaScript context is the same one.
    expect(main(await run("norm({ x: 6, y: 8 })", "js"))).toBe("10");
    const bad = await run("const x: = 1", "ts");
    expect(bad).toMatchObject({ status: "failed", error: { name: "SyntaxError" } });
    expect(bad.error!.value).toContain("Unexpected");
  });

  it("reports the user's frames only, with the cell's own line numbers after a transform", async () => {
    const cell = await run("await null;\nfunction boom() {\n  throw new Error('deep');\n}\nboom()");
    expect(cell).toMatchObject({ status: "failed", error: { name: "Error", value: "deep" } });
    expect(cell.error!.traceback).toMatch(/<cell \d+>:3/);
    expect(cell.error!.traceback).not.toMatch(/kernel|node:vm|\.warden/);
  });
});

describe("bash context", () => {
  let id = "";
  const run = (code: string, timeout = 30): Promise<CellResult> =>
    manager.run(id, "sh", { code, language: "bash", timeout });

  beforeAll(async () => {
    id = (await manager.create("sh", { language: "bash" })).id;
  });

  it("keeps the working directory, shell and exported variables across calls", async () => {
    expect(await run("cd /tmp\nlocal_var=kept\nexport EXPORTED=yes")).toMatchObject({
      status: "completed",
      stdout: "",
      error: null,
    });
    const after = await run("pwd; echo $local_var $EXPORTED; bash -c 'echo child sees $EXPORTED'");
    expect(after).toMatchObject({
      status: "completed",
      stdout: "/tmp\nkept yes\nchild sees yes\n",
    });
    // `!` is not history expansion; arguments are not the framing's.
    expect((await run('echo "hi!" $# "$1"')).stdout).toBe("hi! 0 \n");
  });

  it("maps exit statuses to completed and failed, streams stderr", async () => {
    const failed = await run("echo out; echo err >&2; false");
    expect(failed).toMatchObject({ status: "failed", stdout: "out\n", stderr: "err\n" });
    expect(failed.error?.value).toContain("status 1");
    expect((await run("true")).status).toBe("completed");
  });

  it("interrupts a command at its timeout; the shell and its state survive", async () => {
    await run("cd /tmp; survivor=1");
    const slow = await run("sleep 30; echo never", 1);
    expect(slow.status).toBe("timeout");
    expect(slow.stdout).not.toContain("never");
    const after = await run("pwd; echo $survivor");
    expect(after).toMatchObject({ status: "completed", stdout: "/tmp\n1\n" });
  });

  it("starts a new shell after `exit`", async () => {
    const gone = await run("exit 3");
    expect(gone).toMatchObject({ status: "failed", error: { name: "KernelDied" } });
    expect(gone.error!.value).toContain("status 3");
    const fresh = await run("pwd; echo ${survivor:-unset}");
    expect(fresh).toMatchObject({ status: "completed", stdout: "/workspace\nunset\n" });
  });

  it("does not read the next cell as its stdin", async () => {
    const cell = await run('cat; read -r line; echo "read:${line}:"');
    expect(cell).toMatchObject({ status: "completed", stdout: "read::\n" });
    expect((await run("echo next")).stdout).toBe("next\n");
  });
});
