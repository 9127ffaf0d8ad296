/**
 * Notebooks, analysis and policy modes through a real `warden serve`: a real
 * notebook round-trips as valid nbformat 4 (the official schema), block mode
 * refuses, audit mode runs and records, bad uploads get a clear 4xx.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import AjvModule from "ajv-draft-04";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createKey,
  declaredUpload,
  eventually,
  startServer,
  type TestServer,
} from "../helpers/server.js";

const root = join(import.meta.dirname, "..", "..");
const fixtures = join(root, "test", "fixtures", "notebooks");
const wordcount = readFileSync(join(fixtures, "wordcount.ipynb"));
// ajv-draft-04 is CommonJS: its class is the default export of the default export.
const Ajv = AjvModule.default;
const validate = new Ajv({ strict: false }).compile(
  JSON.parse(readFileSync(join(fixtures, "nbformat.v4.5.schema.json"), "utf8")) as object,
);

interface Output {
  output_type: string;
  name?: string;
  text?: string;
  data?: Record<string, string>;
  ename?: string;
  traceback?: string[];
}
interface Run {
  id: string;
  status: string;
  notebook: { nbformat_minor: number; cells: { cell_type: string; outputs?: Output[] }[] };
  summary: {
    cellsRun: number;
    cellsFailed: number;
    cellsSkipped: number;
    findings: { ruleId: string; cell: number | null; line: number; severity: string }[];
  };
  error: { code: string; message: string } | null;
  download: string;
}

let server: TestServer;
let blockKey: string;
let auditKey: string;

function upload(
  body: Buffer | string,
  filename: string,
  token: string,
  query = "",
): Promise<Response> {
  const form = new FormData();
  form.append("file", new Blob([body]), filename);
  return fetch(`${server.url}/v1/notebooks${query}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
}

const nb = (sources: unknown[]) => ({
  nbformat: 4,
  nbformat_minor: 4,
  metadata: {},
  cells: sources.map((source) => ({
    cell_type: "code",
    metadata: {},
    source,
    outputs: [],
    execution_count: null,
  })),
});

beforeAll(async () => {
  server = await startServer({
    config: { maxSessionsPerUser: 10, notebooks: { maxOutputBytes: 256 * 1024 } },
  });
  blockKey = await createKey(server, "strict-app", "execute", undefined, undefined, "block");
  auditKey = await createKey(server, "audited-app", "execute", undefined, undefined, "audit");
});
afterAll(async () => {
  await server?.stop();
});

describe("POST /v1/notebooks", () => {
  it("round-trips a real notebook: text, an error cell, a plot, a shell line, an unsupported magic", async () => {
    const res = await upload(wordcount, "wordcount.ipynb", server.adminToken, "?stopOnError=false");
    expect(res.status).toBe(200);
    const run = (await res.json()) as Run;
    expect(run.status).toBe("failed");
    expect(run.summary).toMatchObject({ cellsRun: 6, cellsFailed: 2, cellsSkipped: 0 });
    expect(validate(run.notebook), JSON.stringify(validate.errors)).toBe(true);
    // The validator is real: a cell without its id or with a numeric source fails it.
    expect(validate({ ...run.notebook, cells: [{ cell_type: "code", source: 1 }] })).toBe(false);
    expect(run.notebook.nbformat_minor).toBe(5);
    const outputs = run.notebook.cells.map((c) => c.outputs ?? []);
    expect(outputs[1]![0]).toMatchObject({ output_type: "stream", name: "stdout" });
    expect(outputs[1]![0]!.text).toContain("('the', 3)");
    expect(outputs[2]![0]).toMatchObject({
      output_type: "execute_result",
      data: { "text/plain": "('the', 3)" },
    });
    const error = outputs[3]!.find((o) => o.output_type === "error")!;
    expect(error.ename).toBe("ZeroDivisionError");
    expect(error.traceback!.at(-1)).toContain("division by zero");
    const plot = outputs[4]!.find((o) => o.output_type === "display_data")!;
    expect(Buffer.from(plot.data!["image/png"]!, "base64").subarray(1, 4).toString()).toBe("PNG");
    expect(outputs[5]![0]!.text).toContain("from the shell");
    expect(outputs[6]![0]).toMatchObject({ output_type: "error", ename: "UnsupportedMagic" });
    expect(run.summary.findings.map((f) => f.ruleId)).toContain("ipython-shell");

    const download = await server.request("GET", run.download);
    expect(download.headers.get("content-type")).toContain("application/x-ipynb+json");
    const downloaded = await download.json();
    expect(validate(downloaded)).toBe(true);
    expect(downloaded).toEqual(run.notebook);
    // Someone else's key cannot fetch it.
    const other = await server.request("GET", run.download, { token: auditKey });
    expect(other.status).toBe(404);
  });

  it("stops at the first failing cell by default (JSON upload)", async () => {
    const res = await server.request("POST", "/v1/notebooks", {
      body: { notebook: nb(["x = 1", "raise ValueError('bad')", "print('never')"]) },
    });
    const run = (await res.json()) as Run;
    expect(run.summary).toMatchObject({ cellsRun: 2, cellsFailed: 1, cellsSkipped: 1 });
    expect(run.notebook.cells[2]!.outputs).toEqual([]);
    const slow = await server.request("POST", "/v1/notebooks", {
      body: { notebook: nb(["import time\ntime.sleep(30)", "print('after')"]), cellTimeout: 1 },
    });
    const slowRun = (await slow.json()) as Run;
    expect(slowRun.summary).toMatchObject({ cellsFailed: 1, cellsSkipped: 1 });
    expect(slowRun.notebook.cells[0]!.outputs!.at(-1)).toMatchObject({ ename: "TimeoutError" });
    const py = await server.request("POST", "/v1/notebooks", {
      body: { filename: "job.py", content: "# %%\nprint(6 * 7)\n# %%\n6 * 7\n" },
    });
    const pyRun = (await py.json()) as Run;
    expect(pyRun).toMatchObject({ status: "completed", summary: { cellsRun: 2 } });
    expect(validate(pyRun.notebook)).toBe(true);
  });

  it("stops a run whose outputs together pass notebooks.maxOutputBytes", async () => {
    // Each cell keeps within the session's output limit; six of them do not fit the run's.
    const cells = Array.from({ length: 6 }, () => "print('\\x01' * 100_000)");
    const res = await server.request("POST", "/v1/notebooks", {
      body: { notebook: nb(cells), stopOnError: false },
    });
    const run = (await res.json()) as Run;
    expect(run.summary).toMatchObject({ cellsRun: 3, cellsFailed: 1, cellsSkipped: 3 });
    expect(run.notebook.cells[2]!.outputs!.at(-1)).toMatchObject({ ename: "OutputLimit" });
    expect(validate(run.notebook)).toBe(true);
    // One cell of many `!cmd` lines is stopped within the cell.
    const lines = Array.from({ length: 20 }, () => "!head -c 50000 /dev/zero | tr '\\0' a");
    const one = (await (
      await server.request("POST", "/v1/notebooks", {
        body: { notebook: nb([lines.join("\n"), "print(1)"]) },
      })
    ).json()) as Run;
    expect(one.summary).toMatchObject({ cellsRun: 1, cellsFailed: 1, cellsSkipped: 1 });
    expect(one.notebook.cells[0]!.outputs!.length).toBeLessThan(20);
  });
});

describe("a client that hangs up", () => {
  it("cancels its notebook: the session goes", async () => {
    const hangUp = new AbortController();
    const pending = fetch(`${server.url}/v1/notebooks`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${server.adminToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ notebook: nb(["import time\ntime.sleep(60)", "print('never')"]) }),
      signal: hangUp.signal,
    }).catch(() => null);
    const sessions = async (): Promise<number> =>
      ((await (await server.request("GET", "/v1/sessions")).json()) as unknown[]).length;
    await eventually(async () => (await sessions()) === 1);
    hangUp.abort();
    await pending;
    await eventually(async () => (await sessions()) === 0);
  });
});

describe("policy modes", () => {
  const dangerous = nb(["print('hello')", "import os\nos.system('id')"]);

  it("block: refuses a notebook calling os.system, naming the cell and line", async () => {
    const res = await server.request("POST", "/v1/notebooks", {
      token: blockKey,
      body: { notebook: dangerous },
    });
    expect(res.status).toBe(422);
    const run = (await res.json()) as Run;
    expect(run.status).toBe("rejected");
    expect(run.error?.code).toBe("MALICIOUS_CODE");
    expect(run.error?.message).toContain("cell 1, line 2");
    expect(run.summary.findings).toContainEqual(
      expect.objectContaining({ ruleId: "process-exec", cell: 1, line: 2, severity: "high" }),
    );
    expect(run.summary.cellsRun).toBe(0);
  });

  it("audit: runs it, returns the finding and records it in the audit trail", async () => {
    const before = server.count("events", "event = 'policy_findings'");
    const res = await server.request("POST", "/v1/notebooks", {
      token: auditKey,
      body: { notebook: dangerous },
    });
    expect(res.status).toBe(200);
    const run = (await res.json()) as Run;
    expect(run.summary.cellsRun).toBe(2);
    expect(run.summary.findings).toContainEqual(
      expect.objectContaining({ ruleId: "process-exec", cell: 1, line: 2 }),
    );
    expect(server.count("events", "event = 'policy_findings'")).toBe(before + 1);
  });

  it("applies to /v1/executions: block refuses, audit runs with findings, off analyses nothing", async () => {
    const body = { language: "python", code: "import os\nos.system('true')\nprint('ran')" };
    const blocked = await server.request("POST", "/v1/executions", { token: blockKey, body });
    expect(blocked.status).toBe(422);
    expect(await blocked.json()).toMatchObject({
      status: "rejected",
      success: false,
      error: { code: "MALICIOUS_CODE" },
      findings: [expect.objectContaining({ ruleId: "process-exec", line: 2 })],
    });
    const audited = await server.request("POST", "/v1/executions", { token: auditKey, body });
    expect(await audited.json()).toMatchObject({
      status: "completed",
      stdout: "ran\n",
      findings: [expect.objectContaining({ ruleId: "process-exec" })],
    });
    const encoded = await server.request("POST", "/v1/executions", {
      token: blockKey,
      body: {
        language: "python",
        files: [
          { path: "main.py", content: "import helper" },
          {
            path: "helper.py",
            content: Buffer.from(body.code).toString("base64"),
            encoding: "base64",
          },
        ],
      },
    });
    expect(encoded.status).toBe(422);
    expect(await encoded.json()).toMatchObject({
      findings: [expect.objectContaining({ ruleId: "process-exec", file: "helper.py" })],
    });
    const js = await server.request("POST", "/v1/executions", {
      token: blockKey,
      body: { language: "javascript", code: "eval(atob('MQ=='))" },
    });
    expect(js.status).toBe(422);
    const off = (await (await server.request("POST", "/v1/executions", { body })).json()) as object;
    expect(off).not.toHaveProperty("findings");
  });

  it("block: a % line inside brackets is Python, analysed and refused (notebook and execution)", async () => {
    const hidden = "import os\nx = (1\n%os.system('echo pwned'))";
    const notebook = await server.request("POST", "/v1/notebooks", {
      token: blockKey,
      body: { notebook: nb([hidden]) },
    });
    expect(notebook.status).toBe(422);
    expect(((await notebook.json()) as Run).summary.findings).toContainEqual(
      expect.objectContaining({ ruleId: "process-exec", cell: 0, line: 3 }),
    );
    const execution = await server.request("POST", "/v1/executions", {
      token: blockKey,
      body: { language: "python", code: hidden },
    });
    expect(execution.status).toBe(422);
    // `nodejs` is an alias of javascript, and require("m").f is m.f.
    const js = await server.request("POST", "/v1/executions", {
      token: blockKey,
      body: { language: "nodejs", code: "require('child_process').execSync('id')" },
    });
    expect(js.status).toBe(422);
  });

  it("POST /v1/analyze finds base64-obfuscated exec", async () => {
    const res = await server.request("POST", "/v1/analyze", {
      body: {
        language: "python",
        code: "import base64\nsrc = base64.b64decode('aW1wb3J0IG9z')\nexec(src)",
      },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      language: "python",
      complete: true,
      findings: [expect.objectContaining({ ruleId: "obfuscated-exec", line: 3, cell: null })],
    });
  });
});

describe("bad uploads get a clear 4xx", () => {
  const refused = async (res: Response, status: number, message: RegExp): Promise<void> => {
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("INVALID_REQUEST");
    expect(body.error.message).toMatch(message);
  };

  it("malformed JSON, nbformat 3, 10,000 cells, a number as source, a wrong file type", async () => {
    await refused(
      await upload('{"cells": [', "bad.ipynb", server.adminToken),
      400,
      /^notebook: not valid JSON/,
    );
    await refused(
      await server.request("POST", "/v1/notebooks", {
        raw: "{bad",
        headers: { "content-type": "application/json" },
      }),
      400,
      /not valid JSON/,
    );
    await refused(
      await server.request("POST", "/v1/notebooks", {
        body: { notebook: { nbformat: 3, nbformat_minor: 0, metadata: {}, worksheets: [] } },
      }),
      400,
      /^nbformat: version 3 notebooks are not supported/,
    );
    await refused(
      await upload(
        JSON.stringify(nb(Array.from({ length: 10_000 }, () => "pass"))),
        "big.ipynb",
        server.adminToken,
      ),
      400,
      /cells: 10000 cells exceed the limit of 2000/,
    );
    await refused(
      await server.request("POST", "/v1/notebooks", {
        body: { notebook: nb(["a", "b", "c", 42]) },
      }),
      400,
      /^cells\[3\]\.source: must be a string or an array of strings$/,
    );
    const deep = `{"nbformat": 4, "nbformat_minor": 5, "cells": [], "metadata": {"x": ${"[".repeat(100_000)}${"]".repeat(100_000)}}}`;
    await refused(
      await server.request("POST", "/v1/notebooks", {
        raw: `{"notebook": ${deep}}`,
        headers: { "content-type": "application/json" },
      }),
      400,
      /nested deeper than 64 levels/,
    );
    await refused(
      await upload("x", "notes.txt", server.adminToken),
      400,
      /filename: must end in .ipynb or .py/,
    );
  });

  it("refuses a 100 MB upload on its declared length", async () => {
    const status = await declaredUpload(
      server,
      "POST",
      "/v1/notebooks",
      server.adminToken,
      100 * 1024 * 1024,
      "multipart/form-data; boundary=x",
    );
    expect(status).toBe(413);
  });

  it("a file crafted to exhaust the parser only yields a bounded analysis error", async () => {
    const res = await server.request("POST", "/v1/analyze", {
      body: { language: "python", code: `x = ${"-".repeat(1_000_000)}1` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      complete: false,
      findings: [expect.objectContaining({ ruleId: "analysis-failed", severity: "high" })],
    });
    // In block mode such a file is refused (fails closed); the service is unharmed.
    const blocked = await upload(`x = ${"-".repeat(1_000_000)}1\n`, "crash.py", blockKey);
    expect(blocked.status).toBe(422);
    expect(((await blocked.json()) as Run).summary.findings[0]?.ruleId).toBe("analysis-failed");
    expect((await server.request("GET", "/readyz")).status).toBe(200);
  });
});
