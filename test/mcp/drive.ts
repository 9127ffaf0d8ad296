/**
 * Drives every Warden MCP tool through the SDK's own Client, the same way
 * over stdio and HTTP; the transport-specific checks live in the test files.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { expect } from "vitest";

/** A Python program that writes a line every 100 ms for a minute: something to cancel. */
export const TICKING =
  "import sys, time\nfor i in range(600):\n    sys.stdout.write(f'tick {i}\\n')\n    sys.stdout.flush()\n    time.sleep(0.1)";

export const TOOLS = [
  "create_sandbox",
  "destroy_sandbox",
  "exec_command",
  "get_preview_url",
  "list_files",
  "list_runtimes",
  "pause_sandbox",
  "read_file",
  "resume_sandbox",
  "run_code",
  "run_in_sandbox",
  "snapshot_sandbox",
  "write_file",
];

export interface ToolResult {
  isError?: boolean;
  content: {
    type: string;
    text?: string;
    data?: string;
    mimeType?: string;
    resource?: Record<string, string>;
  }[];
  structuredContent?: Record<string, unknown>;
  _meta?: Record<string, unknown>;
}

export async function call(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<ToolResult> {
  return (await client.callTool({ name, arguments: args })) as ToolResult;
}

/** The text of a result's first text block. */
export function text(result: ToolResult): string {
  return result.content.find((c) => c.type === "text")?.text ?? "";
}

export async function listsEveryTool(client: Client): Promise<void> {
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name).sort()).toEqual(TOOLS);
  for (const tool of tools) {
    expect(tool.description?.length, tool.name).toBeGreaterThan(40);
    expect(tool.outputSchema, tool.name).toBeDefined();
    expect(typeof tool.annotations?.readOnlyHint, tool.name).toBe("boolean");
  }
  const run = tools.find((t) => t.name === "run_code")!;
  expect(Object.keys(run.inputSchema.properties ?? {}).sort()).toEqual([
    "code",
    "compare",
    "environment",
    "files",
    "isolation",
    "language",
    "stdin",
    "stop_on_first_failure",
    "tests",
    "timeout_seconds",
  ]);
  expect(tools.find((t) => t.name === "destroy_sandbox")?.annotations?.destructiveHint).toBe(true);
  expect(tools.find((t) => t.name === "read_file")?.annotations?.readOnlyHint).toBe(true);
}

export async function runsCodeOnce(client: Client): Promise<void> {
  const runtimes = await call(client, "list_runtimes");
  const languages = (runtimes.structuredContent?.runtimes as { language: string }[]).map(
    (r) => r.language,
  );
  expect(languages).toContain("python");
  const once = await call(client, "run_code", {
    language: "python",
    code: "import sys\nprint(open('data/n.txt').read().strip(), sys.stdin.read())",
    files: [{ path: "data/n.txt", content: "forty-two" }],
    stdin: "from stdin",
    timeout_seconds: 30,
  });
  expect(once.isError).toBeFalsy();
  expect(once.structuredContent).toMatchObject({
    status: "completed",
    success: true,
    exitCode: 0,
    stdout: "forty-two from stdin\n",
  });
  expect(text(once)).toContain("forty-two from stdin");
  const failing = await call(client, "run_code", {
    language: "python",
    code: "raise SystemExit(3)",
  });
  expect(failing.structuredContent).toMatchObject({ status: "failed", exitCode: 3 });
  // Test cases: a verdict per case, compactly in the text, whole in structuredContent.
  const judged = await call(client, "run_code", {
    language: "python",
    code: "print(int(input()) * 2)",
    tests: [
      { name: "one", stdin: "1", expectedOutput: "2" },
      { name: "two", stdin: "2", expectedOutput: "5" },
    ],
  });
  expect(judged.structuredContent).toMatchObject({
    status: "failed",
    tests: { verdict: "wrong_answer", passed: 1, total: 2 },
  });
  expect(text(judged)).toMatch(/tests: wrong_answer, 1\/2 passed/);
  expect(text(judged)).toMatch(/two: wrong_answer \d+ ms \(line 1: expected "5", got "4"\)/);
  // Artifacts: an image inline, other files as artifact:// links readable as resources,
  // refusals said in words.
  const made = await call(client, "run_code", {
    language: "python",
    code: `import os, shutil
import matplotlib.pyplot as plt
os.makedirs("output", exist_ok=True)
plt.plot([1, 2]); plt.savefig("output/plot.png")
open("output/table.csv", "w").write("a,b\\n1,2\\n")
shutil.copy("/bin/true", "output/fake.png")`,
  });
  const picture = made.content.find((c) => c.type === "image");
  expect(picture?.mimeType).toBe("image/png");
  const link = made.content.find((c) => c.type === "resource_link") as
    { uri: string; name: string } | undefined;
  expect(link?.name).toBe("table.csv");
  expect(link?.uri).toMatch(/^artifact:\/\/exec_[0-9A-Z]{26}\/table\.csv$/);
  const table = await client.readResource({ uri: link!.uri });
  expect(table.contents[0]).toMatchObject({ mimeType: "text/csv", text: "a,b\n1,2\n" });
  const said = made.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
  expect(said).toMatch(/artifact fake\.png refused: .*application\/x-elf/);
  await expect(
    client.readResource({ uri: link!.uri.replace(/exec_\w+/, "exec_01J000000000000000000000AA") }),
  ).rejects.toThrow(/NOT_FOUND/);

  const unknown = await call(client, "run_code", { language: "cobol-9000", code: "x" });
  expect(unknown.isError).toBe(true);
  expect(text(unknown)).toMatch(/^UNSUPPORTED_LANGUAGE: /);
  expect(unknown._meta?.["dev.warden/error"]).toMatchObject({
    code: "UNSUPPORTED_LANGUAGE",
    retryable: false,
  });
}

/** A sandbox's whole life through the tools; returns its id (destroyed). */
export async function drivesASandbox(client: Client, previewBase: string | null): Promise<string> {
  const created = await call(client, "create_sandbox", { timeout_seconds: 600 });
  expect(created.isError).toBeFalsy();
  const id = created.structuredContent?.sandbox_id as string;
  expect(id).toMatch(/^sess_/);

  // A persistent context, and a matplotlib figure as MCP image content.
  await call(client, "run_in_sandbox", { sandbox_id: id, code: "x = 41" });
  const cell = await call(client, "run_in_sandbox", { sandbox_id: id, code: "x + 1" });
  expect(cell.content.some((c) => c.type === "text" && c.text === "42")).toBe(true);
  expect(cell.structuredContent).toMatchObject({ status: "completed" });
  const plot = await call(client, "run_in_sandbox", {
    sandbox_id: id,
    code: "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()",
    timeout_seconds: 120,
  });
  expect(plot.isError, text(plot)).toBeFalsy();
  const image = plot.content.find((c) => c.type === "image");
  expect(image?.mimeType).toBe("image/png");
  expect(Buffer.from(image!.data!, "base64").subarray(0, 8)).toEqual(
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  );
  const js = await call(client, "run_in_sandbox", {
    sandbox_id: id,
    code: "[1, 2].map((n) => n * 2)",
    language: "javascript",
  });
  expect(text(js) + JSON.stringify(js.content)).toContain("4");
  const broken = await call(client, "run_in_sandbox", { sandbox_id: id, code: "1 / 0" });
  expect(broken.structuredContent).toMatchObject({
    status: "failed",
    error: { name: "ZeroDivisionError" },
  });

  // Shell, files.
  const shell = await call(client, "exec_command", {
    sandbox_id: id,
    command: "echo hi > hi.txt && pwd",
  });
  expect(shell.structuredContent).toMatchObject({
    status: "completed",
    exitCode: 0,
    stdout: "/workspace\n",
  });
  const argv = await call(client, "exec_command", { sandbox_id: id, command: ["cat", "hi.txt"] });
  expect(argv.structuredContent?.stdout).toBe("hi\n");
  const wrote = await call(client, "write_file", {
    sandbox_id: id,
    path: "src/a.py",
    content: "print('a')\n",
  });
  expect(wrote.structuredContent).toMatchObject({
    path: "src/a.py",
    size: 11,
    uri: `sandbox://${id}/src/a.py`,
  });
  const bin = Buffer.from([0, 1, 2, 255, 254]);
  await call(client, "write_file", {
    sandbox_id: id,
    path: "/workspace/b.bin",
    content: bin.toString("base64"),
    encoding: "base64",
  });
  const readText = await call(client, "read_file", { sandbox_id: id, path: "src/a.py" });
  expect(readText.content[0]).toMatchObject({
    type: "resource",
    resource: { uri: `sandbox://${id}/src/a.py`, text: "print('a')\n" },
  });
  const resource = await client.readResource({ uri: `sandbox://${id}/src/a.py` });
  expect(resource.contents).toEqual([
    { uri: `sandbox://${id}/src/a.py`, mimeType: "text/plain", text: "print('a')\n" },
  ]);
  const readBin = await call(client, "read_file", { sandbox_id: id, path: "b.bin" });
  expect(readBin.content[0]?.resource?.blob).toBe(bin.toString("base64"));
  expect(readBin.structuredContent).toMatchObject({ encoding: "base64", size: 5 });
  const listing = await call(client, "list_files", { sandbox_id: id });
  const names = (listing.structuredContent?.entries as { name: string }[]).map((e) => e.name);
  expect(names).toEqual(expect.arrayContaining(["hi.txt", "src", "b.bin"]));
  const sub = await call(client, "list_files", { sandbox_id: id, path: "src" });
  expect((sub.structuredContent?.entries as { name: string }[]).map((e) => e.name)).toEqual([
    "a.py",
  ]);
  for (const result of [readText, readBin, listing, wrote])
    expect(JSON.stringify(result)).not.toMatch(/\/run\/warden|\/var\/lib|boxes\//);

  const preview = await call(client, "get_preview_url", { sandbox_id: id, port: 8000 });
  if (previewBase === null) {
    expect(preview.isError).toBe(true);
    expect(text(preview)).toMatch(/^INVALID_REQUEST: /);
  } else
    expect(preview.structuredContent?.url).toBe(`${previewBase}/v1/sessions/${id}/ports/8000/`);

  const destroyed = await call(client, "destroy_sandbox", { sandbox_id: id });
  expect(destroyed.structuredContent).toEqual({ sandbox_id: id, destroyed: true });
  const gone = await call(client, "exec_command", { sandbox_id: id, command: "true" });
  expect(gone.isError).toBe(true);
  expect(text(gone)).toMatch(/^NOT_FOUND: /);
  return id;
}

/** Host accounts the sandbox's generated /etc/passwd does not have. */
function hostOnlyAccounts(): string[] {
  return readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((line) => line.split(":")[0] ?? "")
    .filter((name) => name && !["root", "nobody", "sandbox"].includes(name));
}

/** `..` and planted symlinks: an error, or the sandbox's own files, never the host's. */
export async function keepsFilesInside(client: Client): Promise<void> {
  const id = (await call(client, "create_sandbox")).structuredContent?.sandbox_id as string;
  const hostOnly = hostOnlyAccounts();
  expect(hostOnly.length).toBeGreaterThan(0);
  const leaks = (r: ToolResult): string[] =>
    hostOnly.filter((name) => JSON.stringify(r).includes(`${name}:x:`));
  for (const path of ["../../etc/passwd", "/etc/passwd", "src/../../etc/passwd"]) {
    const r = await call(client, "read_file", { sandbox_id: id, path });
    expect(r.isError, path).toBe(true);
    expect(text(r)).toMatch(/^INVALID_REQUEST: path: /);
    expect(leaks(r)).toEqual([]);
  }
  await call(client, "exec_command", {
    sandbox_id: id,
    command: "ln -s /etc/passwd x && ln -s /etc/shadow y && ln -s ../../../etc z",
  });
  const x = await call(client, "read_file", { sandbox_id: id, path: "x" });
  // The link resolves inside the sandbox: to its own generated passwd, if anything.
  expect(leaks(x)).toEqual([]);
  if (!x.isError) expect(x.structuredContent?.content).toMatch(/^root:x:0:0:/);
  const y = await call(client, "read_file", { sandbox_id: id, path: "y" });
  expect(y.isError).toBe(true);
  const z = await call(client, "read_file", { sandbox_id: id, path: "z/passwd" });
  expect(leaks(z)).toEqual([]);
  for (const uri of [`sandbox://${id}/..%2F..%2Fetc%2Fpasswd`, `sandbox://${id}/../../etc/passwd`])
    await expect(client.readResource({ uri }), uri).rejects.toThrow(
      /^MCP error -32602: (INVALID_REQUEST: path: |NOT_FOUND: path: )/,
    );
  const writeOut = await call(client, "write_file", {
    sandbox_id: id,
    path: "../escape.txt",
    content: "x",
  });
  expect(writeOut.isError).toBe(true);
  await call(client, "destroy_sandbox", { sandbox_id: id });
}

/** Runs the MCP Inspector's CLI mode against `target` (a command line or a URL); resolves with its stdout. */
export function runInspector(target: string[], args: string[]): Promise<string> {
  const inspector = join(import.meta.dirname, "..", "..", "node_modules", ".bin", "mcp-inspector");
  return new Promise((resolve, reject) => {
    const child = spawn(inspector, ["--cli", ...target, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`inspector exited ${code}: ${err}`)),
    );
  });
}

/** tools/list, then run_code printing 42, through the Inspector. */
export async function inspectorListsAndCalls(target: string[]): Promise<void> {
  const listed = JSON.parse(await runInspector(target, ["--method", "tools/list"])) as {
    tools: { name: string }[];
  };
  expect(listed.tools.map((t) => t.name)).toContain("run_in_sandbox");
  const called = JSON.parse(
    await runInspector(target, [
      "--method",
      "tools/call",
      "--tool-name",
      "run_code",
      "--tool-arg",
      "language=python",
      "--tool-arg",
      "code=print(6 * 7)",
    ]),
  ) as { structuredContent: { stdout: string } };
  expect(called.structuredContent.stdout).toBe("42\n");
}
