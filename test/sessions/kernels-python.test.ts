/**
 * Python cells behave as in Jupyter, through IPython where the session's
 * python has it and through Warden's built-in kernel otherwise (forced here
 * by sessionPythonKernel: builtin). Both paths run the same cells in real
 * sessions; where they differ (traceback layout, cell names) each is checked.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { loadConfig } from "../../src/config/load.js";
import { SessionManager } from "../../src/sessions/manager.js";
import type { CellResult } from "../../src/sessions/types.js";
import { testHost } from "../helpers/sandbox.js";

const managers: Record<"ipython" | "builtin", SessionManager | undefined> = {
  ipython: undefined,
  builtin: undefined,
};

beforeAll(async () => {
  const host = await testHost();
  for (const kernel of ["ipython", "builtin"] as const) {
    const config = loadConfig({
      env: {},
      overrides: {
        maxSessionsPerUser: 10,
        sessionPythonKernel: kernel === "builtin" ? "builtin" : "auto",
      },
    });
    managers[kernel] = new SessionManager(config, host, silentLogger, { audit: () => {} });
  }
});
afterAll(async () => {
  for (const m of Object.values(managers)) await m?.closeAll();
});

/** The MIME types of each result, in order, with the main one marked. */
function shapes(cell: CellResult): string[] {
  return cell.results.map(
    (r) =>
      `${r.isMainResult ? "main:" : ""}${Object.keys(r.data)
        .filter((m) => m !== "text/plain")
        .sort()
        .join(",")}`,
  );
}

describe.each(["ipython", "builtin"] as const)("Python cells (%s)", (kernel) => {
  const user = `py-${kernel}`;
  const m = (): SessionManager => managers[kernel]!;
  let id = "";
  const run = (code: string, timeout = 60): Promise<CellResult> =>
    m().run(id, user, { code, timeout });

  beforeAll(async () => {
    id = (await m().create(user, { limits: { memoryMb: 512 } })).id;
  });

  it("uses the engine it was asked for", async () => {
    const which = await run("import sys\n'IPython.core.interactiveshell' in sys.modules");
    expect(which.results[0]?.data["text/plain"]).toBe(kernel === "ipython" ? "True" : "False");
  });

  it("gives display(HTML), a DataFrame, a plot, then the main result, in order", async () => {
    const cell = await run(
      [
        "import pandas as pd, matplotlib.pyplot as plt",
        "display(HTML('<b>bold</b>'))",
        "df = pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})",
        "display(df)",
        "plt.plot([1, 2, 3])",
        "'the end'",
      ].join("\n"),
    );
    expect(cell.error).toBeNull();
    expect(shapes(cell)).toEqual(["text/html", "text/html", "image/png", "main:"]);
    expect(cell.results[0]?.data["text/html"]).toBe("<b>bold</b>");
    expect(cell.results[1]?.data["text/html"]).toContain("<table");
    expect(cell.results[1]?.data["text/plain"]).toContain("a  b");
    const png = Buffer.from(cell.results[2]!.data["image/png"]!, "base64");
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(cell.results[3]?.data["text/plain"]).toBe("'the end'");
    // A DataFrame as the last expression is the main result, as html and text.
    const main = await run("df");
    expect(main.results).toHaveLength(1);
    expect(main.results[0]).toMatchObject({ isMainResult: true });
    expect(Object.keys(main.results[0]!.data).sort()).toEqual(["text/html", "text/plain"]);
  });

  it("shows plt.show() figures where they are shown, and the display objects' types", async () => {
    const cell = await run(
      [
        "plt.plot([1]); plt.show()",
        "print('after show')",
        "display(Markdown('# t'), Latex('$x$'), SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"/>'), JSON({'k': 1}))",
      ].join("\n"),
    );
    expect(cell.error).toBeNull();
    expect(cell.stdout).toBe("after show\n");
    expect(cell.stderr).toBe("");
    expect(shapes(cell)).toEqual([
      "image/png",
      "text/markdown",
      "text/latex",
      "image/svg+xml",
      "application/json",
    ]);
    expect(JSON.parse(cell.results[4]!.data["application/json"]!)).toEqual({ k: 1 });
    // Metadata comes with its result (here an image's width).
    const image = await run(
      "display(Image(data=b'\\x89PNG\\r\\n\\x1a\\n' + bytes(16), format='png', width=10))",
    );
    expect(image.error).toBeNull();
    expect(image.results).toEqual([
      {
        data: expect.objectContaining({ "image/png": expect.stringMatching(/^iVBORw0KGgo/) }),
        metadata: { "image/png": { width: 10 } },
        isMainResult: false,
      },
    ]);
  });

  it("offers IPython.display without IPython, and never shadows a real one", async () => {
    // -S leaves dist-packages (and so IPython) out of reach: the built-in display shim answers.
    const probe = (flags: string) =>
      m().command(id, user, {
        command: [
          "python3",
          ...(flags ? [flags] : []),
          "-c",
          "import sys; sys.path.append('/.warden/lib')\nimport kernel_common, kernel_display\ns = kernel_common.Sink(); s.begin(); kernel_display.install(s)\nfrom IPython.display import display, HTML\nimport IPython\ndisplay(HTML('<p>x</p>'))\nprint(IPython.__version__.startswith('0 '), IPython.get_ipython(), s.end())",
        ],
      });
    const shim = await probe("-S");
    expect(shim.stdout).toBe(
      "True None [{'data': {'text/html': '<p>x</p>', 'text/plain': '<HTML object>'}, 'isMainResult': False}]\n",
    );
    const real = await probe("");
    expect(real.stdout).toMatch(/^<IPython.core.display.HTML object>\nFalse None \[\]\n$/);
  });

  it("imports the workspace's modules, never in place of the kernel's own", async () => {
    await m().command(id, user, {
      command:
        "echo 'ANSWER = 42' > mymod.py; for m in kernel_common kernel_builtin kernel_ipython kernel_display; do echo 'raise SystemExit(9)' > $m.py; done",
    });
    // The context restarts with those files in its working directory.
    expect((await run("import os\nos._exit(0)")).error?.name).toBe("KernelDied");
    const cell = await run(
      "import mymod, pickle\nclass P: pass\nlen(pickle.dumps(P())) > 0 and mymod.ANSWER",
    );
    expect(cell.error).toBeNull();
    expect(cell.results[0]?.data["text/plain"]).toBe("42");
  });

  it("runs top-level await", async () => {
    const cell = await run(
      "import asyncio\nawait asyncio.sleep(0)\nawait asyncio.sleep(0, 'slept')",
    );
    expect(cell.error).toBeNull();
    expect(cell.results[0]?.data["text/plain"]).toBe("'slept'");
  });

  it("runs %time, %%bash, !cmd and %pip", async () => {
    const time = await run("%time sum(range(10))");
    expect(time.stdout).toMatch(/CPU times: .*\nWall time: /);
    expect(time.results[0]?.data["text/plain"]).toBe("45");
    const bash = await run("%%bash\necho from bash $((6 * 7))\necho oops >&2");
    expect(bash).toMatchObject({ status: "completed", stdout: "from bash 42\n", stderr: "oops\n" });
    const shell = await run("!echo hello from the shell\nlines = !printf 'a\\nb\\n'\nlen(lines)");
    expect(shell.stdout).toContain("hello from the shell");
    expect(shell.results[0]?.data["text/plain"]).toBe("2");
    // %pip runs `python -m pip` of the session's python (no network needed for --version).
    const pip = await run("%pip --version");
    expect(pip.error).toBeNull();
    expect(pip.stdout).toMatch(/^pip \d+/);
  });

  it("shows the user's frames only in a traceback", async () => {
    const cell = await run("def inner():\n    return 1 / 0\n\ninner()");
    expect(cell).toMatchObject({ status: "failed", error: { name: "ZeroDivisionError" } });
    const tb = cell.error!.traceback;
    expect(tb).toContain("return 1 / 0");
    expect(tb).toMatch(kernel === "ipython" ? /Cell In ?\[\d+\], line 4/ : /<cell \d+>", line 4/);
    expect(tb).not.toMatch(/kernel|interactiveshell|\/\.warden\//);
    const unknown = await run("%nosuchmagic");
    expect(unknown).toMatchObject({
      status: "failed",
      error: { name: "UsageError", traceback: "" },
    });
  });

  it("interrupts a cell at its timeout, also in a shell command, and keeps the context", async () => {
    await run("kept = 'still here'");
    const loop = await run("while True: pass", 1);
    expect(loop).toMatchObject({ status: "timeout", error: { name: "KeyboardInterrupt" } });
    const sleeper = await run("!sleep 30", 1);
    expect(sleeper.status).toBe("timeout");
    expect((await run("kept")).results[0]?.data["text/plain"]).toBe("'still here'");
  });

  it("reports memory_limit for a cell the cgroup killed, then starts a clean context", async () => {
    const s = await m().create(user, { limits: { memoryMb: 192 } });
    await m().run(s.id, user, { code: "before = 1" });
    const bomb = await m().run(s.id, user, {
      code: "x = []\nwhile True: x.append(bytearray(8 << 20))",
      timeout: 60,
    });
    expect(bomb).toMatchObject({ status: "memory_limit", error: { name: "MemoryLimit" } });
    const fresh = await m().run(s.id, user, { code: "'before' in dir()" });
    expect(fresh.results[0]?.data["text/plain"]).toBe("False");
    const works = await m().run(s.id, user, { code: "display(HTML('<i>ok</i>'))\n6 * 7" });
    expect(shapes(works)).toEqual(["text/html", "main:"]);
    await m().destroy(s.id, user, "test");
  }, 120_000);
});
