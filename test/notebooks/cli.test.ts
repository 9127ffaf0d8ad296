/** `warden analyze` and `warden notebook run` as a user runs them, and `keys create --policy`. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "warden-nb-cli-"));

function warden(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, "bin", "warden.js"), ...args], {
    encoding: "utf8",
    env: { ...process.env, WARDEN_DATA_DIR: join(dir, "data"), WARDEN_CONFIG: "" },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("warden analyze", () => {
  it("prints findings with file, line and rule; exits 1 on high severity, 0 when clean", () => {
    const bad = join(dir, "bad.py");
    writeFileSync(bad, "import os\nos.system('id')\n");
    const r = warden("analyze", bad);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`${bad}: line 2:1 high process-exec: os.system()`);
    const clean = join(dir, "clean.py");
    writeFileSync(clean, "print(sum(range(10)))\n");
    expect(warden("analyze", clean).status).toBe(0);
    const json = warden("analyze", "--json", join(root, "test/fixtures/notebooks/wordcount.ipynb"));
    expect(JSON.parse(json.stdout)).toMatchObject({ language: "python", complete: true });
  });

  it("reads a notebook's language as the service does (language_info.name too)", () => {
    const notebook = join(dir, "node.ipynb");
    writeFileSync(
      notebook,
      JSON.stringify({
        nbformat: 4,
        nbformat_minor: 5,
        metadata: { language_info: { name: "nodejs" } },
        cells: [
          {
            cell_type: "code",
            id: "a",
            metadata: {},
            source: "require('child_process').execSync('id')",
            outputs: [],
            execution_count: null,
          },
        ],
      }),
    );
    const r = warden("analyze", "--json", notebook);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      language: "javascript",
      findings: expect.arrayContaining([expect.objectContaining({ ruleId: "process-exec" })]),
    });
  });
});

describe("warden notebook run", () => {
  it("writes the executed notebook; exits 1 when a cell failed", () => {
    const out = join(dir, "out.ipynb");
    const r = warden(
      "notebook",
      "run",
      join(root, "test/fixtures/notebooks/wordcount.ipynb"),
      "-o",
      out,
      "--continue",
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("6 cell(s) run, 2 failed, 0 skipped");
    const nb = JSON.parse(readFileSync(out, "utf8")) as { nbformat: number; cells: unknown[] };
    expect(nb).toMatchObject({ nbformat: 4, nbformat_minor: 5 });
    expect(nb.cells).toHaveLength(8);
  });

  it("exits 4 when the block policy refuses it, 0 when every cell ran", () => {
    const bad = join(dir, "bad.py");
    writeFileSync(bad, "import os\nos.system('id')\n");
    const refused = warden("notebook", "run", bad, "--policy", "block", "-o", join(dir, "x.ipynb"));
    expect(refused.status).toBe(4);
    expect(refused.stderr).toContain("MALICIOUS_CODE");
    const good = join(dir, "good.py");
    writeFileSync(good, "print('ok')\n");
    const ok = warden("notebook", "run", good, "-o", join(dir, "good.ipynb"));
    expect(ok.status).toBe(0);
  });
});

describe("warden keys --policy", () => {
  it("makes a key with a policy and lists it; refuses an unknown mode", () => {
    expect(warden("keys", "create", "--name", "strict", "--policy", "block").status).toBe(0);
    expect(warden("keys", "list").stdout).toMatch(/strict\s+strict\s+execute\s+block\s/);
    const r = warden("keys", "create", "--name", "x", "--policy", "strict");
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--policy: unknown mode "strict" (one of off, audit, block)');
  });
});
