/** nbformat 4 validation (errors name the cell and field), .py import, cell segmentation. */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { parseNotebook, pythonToNotebook, validateNotebook } from "../../src/notebooks/format.js";
import { segments } from "../../src/notebooks/runner.js";

const limits = loadConfig({ env: {} }).notebooks;
const code = (source: unknown) => ({
  cell_type: "code",
  metadata: {},
  source,
  outputs: [],
  execution_count: null,
});
const notebook = (cells: unknown[], extra: Record<string, unknown> = {}) => ({
  nbformat: 4,
  nbformat_minor: 5,
  metadata: {},
  cells,
  ...extra,
});
const refusal = (value: unknown): string => {
  try {
    validateNotebook(value, limits);
  } catch (error) {
    expect((error as { code: string }).code).toBe("INVALID_REQUEST");
    return (error as Error).message;
  }
  throw new Error("accepted");
};

describe("notebook validation", () => {
  it("accepts nbformat 4 and fills in what 4.0 made optional", () => {
    const nb = validateNotebook(
      notebook([
        { cell_type: "code", source: ["a = 1\n", "a"] },
        { cell_type: "markdown", source: "# x" },
      ]),
      limits,
    );
    expect(nb.cells[0]).toMatchObject({ outputs: [], execution_count: null, metadata: {} });
  });

  it("names the cell index and the field", () => {
    expect(refusal(notebook([code("x"), code("y"), code("z"), code(42)]))).toBe(
      "cells[3].source: must be a string or an array of strings",
    );
    expect(refusal(notebook([{ cell_type: "widget", source: "" }]))).toContain(
      "cells[0].cell_type: must be code, markdown or raw",
    );
    expect(refusal(notebook([{ ...code("x"), outputs: [{ output_type: "bogus" }] }]))).toContain(
      "cells[0].outputs[0].output_type",
    );
    expect(refusal(notebook([{ ...code("x"), execution_count: "1" }]))).toContain(
      "cells[0].execution_count: must be an integer or null",
    );
    expect(refusal({ ...notebook([]), metadata: [] })).toContain("metadata: must be an object");
    expect(refusal(notebook([{ ...code("x"), colour: "red" }]))).toContain(
      "cells[0]: unknown field(s) colour",
    );
  });

  it("refuses nbformat 3 with a way forward, and anything that is not a notebook", () => {
    expect(refusal({ nbformat: 3, nbformat_minor: 0, worksheets: [] })).toMatch(
      /^nbformat: version 3 notebooks are not supported; convert/,
    );
    expect(refusal([1, 2])).toBe("notebook: must be a JSON object (an .ipynb file)");
    expect(refusal({ cells: [] })).toBe("nbformat: must be 4");
    expect(() => parseNotebook("{not json", limits)).toThrow(/^notebook: not valid JSON/);
  });

  it("refuses 10,000 cells by count, before checking each", () => {
    const cells = Array.from({ length: 10_000 }, () => code(1));
    expect(refusal(notebook(cells))).toBe(
      "cells: 10000 cells exceed the limit of 2000 (notebooks.maxCells)",
    );
  });
});

describe("python files", () => {
  it("become one code cell, or one per # %% marker with markdown cells", () => {
    expect(pythonToNotebook("print(1)\n", limits).cells).toHaveLength(1);
    const nb = pythonToNotebook(
      "import os\n# %% [markdown]\n# # Title\n# %%\nx = 1\n# %% second\ny = 2\n",
      limits,
    );
    expect(nb.cells.map((c) => [c.cell_type, c.source])).toEqual([
      ["code", "import os"],
      ["markdown", "# Title"],
      ["code", "x = 1"],
      ["code", "y = 2"],
    ]);
  });
});

describe("cell segments", () => {
  it("splits shell lines and magics from Python, in order", () => {
    expect(segments("x = 1\n!ls -l\n%pip install numpy\ny = 2\n%matplotlib inline")).toEqual([
      { kind: "code", code: "x = 1" },
      { kind: "shell", command: "ls -l" },
      { kind: "unsupported", magic: "%pip" },
      { kind: "code", code: "y = 2" },
    ]);
    expect(segments("%%bash\necho hi\n")).toEqual([{ kind: "shell", command: "echo hi\n" }]);
    expect(segments("%%timeit\nx")).toEqual([{ kind: "unsupported", magic: "%%timeit" }]);
    expect(segments("%system uname")).toEqual([{ kind: "shell", command: "uname" }]);
    // `% name` is a magic as native/analyze.py reads it too.
    expect(segments("% system uname")).toEqual([{ kind: "shell", command: "uname" }]);
  });

  it("takes % and ! lines out only at the start of a statement, as the analyser does", () => {
    // Inside brackets, a continuation or a string these lines are Python (a modulo, a !=, text).
    const modulo = 'x = (1\n%os.system("echo pwned"))';
    expect(segments(modulo)).toEqual([{ kind: "code", code: modulo }]);
    const continued = 'x = 1 \\\n%os.system("echo pwned")';
    expect(segments(continued)).toEqual([{ kind: "code", code: continued }]);
    const text = 's = """\n!ls\n%pip x\n"""';
    expect(segments(text)).toEqual([{ kind: "code", code: text }]);
    const compare = "y = (1\n!= 2)";
    expect(segments(compare)).toEqual([{ kind: "code", code: compare }]);
    const quoted = "s = 'a\\\n(b'\n!ls";
    expect(segments(quoted)).toEqual([
      { kind: "code", code: "s = 'a\\\n(b'" },
      { kind: "shell", command: "ls" },
    ]);
    // A comment does not open a bracket; after the brackets close, magics count again.
    expect(segments("f(1,  # (\n2)\n!ls")).toEqual([
      { kind: "code", code: "f(1,  # (\n2)" },
      { kind: "shell", command: "ls" },
    ]);
  });
});
