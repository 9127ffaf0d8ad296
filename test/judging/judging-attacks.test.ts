/**
 * Hostile solutions, compile steps and checkers against a judge run: output
 * floods cut per case, a compiled workspace that is too big or holds a link
 * to a host secret, checkers that fork-bomb, snoop or look for a network,
 * and a case that leaves files for the next. Each must fail, contained, and
 * Warden must keep answering.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.js";
import { openWarden, type EmbeddedWarden } from "../../src/index.js";

let warden: EmbeddedWarden;
const CASE_OUTPUT_BYTES = 4096;

/** Stand-ins for a compiler the code controls: what it leaves is the attack. */
const hostileCompiler = (language: string, script: string) => ({
  language,
  extensions: [],
  fileName: "main.sh",
  tools: { sh: ["sh"] },
  compile: ["{sh}", "-c", script],
  run: ["{sh}", "main.sh"],
  version: { tool: "sh", args: ["-c", "echo 1.0"] },
});

beforeAll(async () => {
  warden = await openWarden({
    config: ConfigSchema.parse({
      dataDir: mkdtempSync(join(tmpdir(), "warden-judge-attacks-")),
      sandbox: { pool: { enabled: false } },
      judging: { caseOutputBytes: CASE_OUTPUT_BYTES, maxCompiledMb: 4 },
      runtimes: [
        hostileCompiler("linkleak", "ln -s /etc/shadow leak && ln -s / root"),
        hostileCompiler("bigbuild", "head -c 8388608 /dev/zero > big.bin"),
      ],
    }),
  });
});
afterAll(async () => {
  await warden?.shutdown(2000);
});

async function stillUp(): Promise<void> {
  const r = await warden.execute({ language: "python", code: "print(6 * 7)" });
  expect(r.stdout).toBe("42\n");
}

describe("judging attacks", () => {
  it("a case that floods its output is cut at caseOutputBytes in the result", async () => {
    const r = await warden.execute({
      language: "python",
      code: "import sys\nwhile True: sys.stdout.write('x' * 65536)",
      tests: [{ stdin: "" }, { stdin: "" }],
      limits: { outputBytes: 4 * 1024 * 1024 },
      timeout: 5,
    });
    for (const c of r.tests!.cases) {
      expect(c.verdict).toBe("output_limit");
      expect(Buffer.byteLength(c.stdout)).toBeLessThanOrEqual(CASE_OUTPUT_BYTES);
      expect(c.truncated.stdout).toBe(true);
    }
    expect(JSON.stringify(r).length).toBeLessThan(64 * 1024);
    await stillUp();
  });

  it("a link the compile step leaves is never followed into the cases' sandboxes", async () => {
    const r = await warden.execute({
      language: "linkleak",
      code: "cat leak 2>&1; ls root/ 2>&1 | head -3; echo done",
      tests: [{ stdin: "" }],
    });
    const out = r.tests!.cases[0]!.stdout;
    expect(r.tests!.cases[0]!.verdict).toBe("accepted");
    expect(out).toMatch(/No such file/);
    expect(out).not.toMatch(/root:/);
    expect(out).toMatch(/done\n$/);
    await stillUp();
  });

  it("a compile step that leaves more than maxCompiledMb is a compile_error", async () => {
    const r = await warden.execute({
      language: "bigbuild",
      code: "echo never",
      tests: [{ stdin: "" }, { stdin: "" }],
    });
    expect(r.tests).toMatchObject({ verdict: "compile_error", skipped: 2 });
    expect(r.error?.message).toMatch(/more than 4194304 bytes .*judging.maxCompiledMb/);
    await stillUp();
  });

  it("a hostile checker is contained: fork bomb, snooping, network", async () => {
    const judged = (code: string) =>
      warden.execute({
        language: "python",
        code: "print(input())",
        tests: [{ stdin: "1", expectedOutput: "1" }],
        compare: {
          mode: "checker",
          checker: { language: "python", code, limits: { timeout: 3, pids: 32 } },
        },
      });
    const bomb = await judged(
      "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
    );
    expect(bomb.tests!.cases[0]!.verdict).toBe("error");
    // What the checker can see: its own files, none of the solution's, no host secret, no network.
    const snoop = await judged(
      [
        "import os",
        "seen = sorted(os.listdir('.'))",
        "try:",
        "    open('/etc/shadow').read(); shadow = 'read'",
        "except OSError: shadow = 'denied'",
        "links = sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:])",
        "print(' '.join(seen), '|', shadow, '|', ','.join(links))",
      ].join("\n"),
    );
    const message = snoop.tests!.cases[0]!.message!;
    expect(message).toMatch(/actual\.txt expected\.txt input\.txt main\.py/);
    expect(message).not.toMatch(/main\.cpp|left-behind/);
    expect(message).toMatch(/\| denied \| lo$/);
    await stillUp();
  });

  it("a case cannot see another case's files (a fresh sandbox each)", async () => {
    const r = await warden.execute({
      language: "python",
      code: [
        "import os",
        "if os.path.exists('planted.txt'): print('seen')",
        "else:",
        "    open('planted.txt', 'w').write('x'); open('/tmp/planted', 'w').write('x'); print('clean')",
      ].join("\n"),
      tests: [
        { stdin: "", expectedOutput: "clean" },
        { stdin: "", expectedOutput: "clean" },
      ],
    });
    expect(r.tests!.cases.map((c) => c.stdout)).toEqual(["clean\n", "clean\n"]);
  });
});
