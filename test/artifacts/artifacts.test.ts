/**
 * Artifacts through `warden serve`: files a run leaves under /workspace/output
 * (or names) come back typed by their content; links, programs, liars about
 * their type and files beyond the limits are refused with the reason, audited,
 * and nothing of the sandbox is left on the host.
 */
import { readFileSync, readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { createKey, eventually, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let ann: string;
let bob: string;

interface Result {
  status: string;
  stdout: string;
  stderr: string;
  artifacts: { name: string; size: number; mimeType: string; url: string }[];
  rejectedArtifacts: { name: string; reason: string }[];
}

/** Leaves a plot, a CSV, a JSON file outside output/, and hostile files. */
const HOSTILE = `
import os, shutil
os.makedirs("output/plots", exist_ok=True)
import matplotlib.pyplot as plt
plt.plot([1, 2, 3], [4, 1, 9])
plt.savefig("output/plots/line.png")
open("output/data.csv", "w").write("a,b\\n1,2\\n")
open("result.json", "w").write('{"answer": 42}')
shutil.copy("/bin/true", "output/innocent.png")    # a program pretending to be an image
shutil.copy("/bin/true", "output/tool")            # a program
os.symlink("/etc/passwd", "output/passwd")         # a link out of the workspace
try:
    os.link("/etc/passwd", "output/hard")          # a hard link to a host file
    print("hard link made")
except OSError as e:
    print("hard link refused:", e.errno)
`;

function run(token: string, code: string, extra: Record<string, unknown> = {}): Promise<Result> {
  return server
    .request("POST", "/v1/executions", { token, body: { language: "python", code, ...extra } })
    .then((r) => r.json() as Promise<Result>);
}

beforeAll(async () => {
  server = await startServer({ config: { maxArtifactsPerExecution: 6, maxArtifactSizeMB: 1 } });
  ann = await createKey(server, "ann-art", "execute,sessions", "ann");
  bob = await createKey(server, "bob-art", "execute,sessions", "bob");
});
afterAll(async () => {
  await server?.stop();
});

describe("artifacts", () => {
  it("returns output/ files typed by content and refuses links, programs and liars", async () => {
    const r = await run(ann, HOSTILE, { artifacts: ["result.json", "result.json/x"] });
    expect(r.status).toBe("completed");
    expect(r.artifacts.map((a) => [a.name, a.mimeType])).toEqual([
      ["data.csv", "text/csv"],
      ["plots/line.png", "image/png"],
      ["result.json", "application/json"],
    ]);
    const reasons = Object.fromEntries(r.rejectedArtifacts.map((x) => [x.name, x.reason]));
    expect(reasons["innocent.png"]).toMatch(
      /name says \.png but the content is application\/x-elf/,
    );
    expect(reasons.tool).toMatch(/application\/x-elf is not allowed/);
    expect(reasons.passwd).toMatch(/symbolic link/);
    expect(reasons["result.json/x"]).toMatch(/no such file/);
    // The kernel refuses a hard link to a host file: the workspace is its own filesystem.
    expect(r.stdout).toMatch(/hard link refused: 18/); // EXDEV
    expect(reasons.hard).toBeUndefined();

    const png = await server.request("GET", r.artifacts[1]!.url, { token: ann });
    expect(png.status).toBe(200);
    expect(png.headers.get("content-type")).toBe("image/png");
    expect(png.headers.get("content-disposition")).toMatch(/^attachment/);
    const bytes = Buffer.from(await png.arrayBuffer());
    expect(bytes.subarray(0, 4)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    expect((await server.request("GET", r.artifacts[1]!.url, { token: bob })).status).toBe(404);
    const id = r.artifacts[0]!.url.split("/")[3];
    const list = (await (
      await server.request("GET", `/v1/executions/${id}/artifacts`, { token: ann })
    ).json()) as { name: string }[];
    expect(list.map((a) => a.name)).toEqual(["data.csv", "plots/line.png", "result.json"]);
    expect(server.count("events", "event = 'artifact_rejected'")).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it("keeps the size and count limits, and asks nothing of runs without output", async () => {
    const many = await run(
      ann,
      `import os
os.makedirs("output", exist_ok=True)
for i in range(8): open(f"output/f{i}.txt", "w").write("x")
open("output/big.txt", "w").write("y" * 2_000_000)`,
    );
    expect(many.artifacts).toHaveLength(6);
    const reasons = many.rejectedArtifacts.map((x) => x.reason).join("\n");
    expect(reasons).toMatch(/more than 6 artifacts/);
    expect(reasons).toMatch(/2000000 bytes is more than 1048576/);
    const plain = await run(ann, "print(1)");
    expect(plain).toMatchObject({ status: "completed", artifacts: [], rejectedArtifacts: [] });
    const named = await server.request("POST", "/v1/executions", {
      token: ann,
      body: { language: "python", code: "pass", artifacts: ["../etc/passwd"] },
    });
    expect(named.status).toBe(400);
    expect(await named.text()).toMatch(/artifacts\[0\]/);

    // No workspace mount or box directory of this server is left behind.
    const owner = `b${server.process.pid}-`;
    const runDir = loadConfig({ env: {} }).runDir;
    // (Teardown finishes after the result is returned.)
    await eventually(
      async () => readdirSync(`${runDir}/boxes`).filter((b) => b.startsWith(owner)).length === 0,
    );
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(`/boxes/${owner}`);
  }, 60_000);

  it("collects what a session's cell or command leaves in output/", async () => {
    const session = (await (
      await server.request("POST", "/v1/sessions", { token: ann, body: {} })
    ).json()) as { id: string };
    const base = `/v1/sessions/${session.id}`;
    const cell = (await (
      await server.request("POST", `${base}/run`, {
        token: ann,
        body: {
          code: `import os, matplotlib.pyplot as plt
os.makedirs("output", exist_ok=True)
plt.plot([0, 1]); plt.savefig("output/fig.png")
os.symlink("/etc/shadow", "output/shadow")`,
        },
      })
    ).json()) as Result;
    expect(cell.artifacts.map((a) => a.name)).toEqual(["fig.png"]);
    expect(cell.rejectedArtifacts).toEqual([
      { name: "shadow", reason: expect.stringMatching(/symbolic link/) as unknown },
    ]);
    // The next call collects only what changed during it.
    const cmd = (await (
      await server.request("POST", `${base}/commands`, {
        token: ann,
        body: { command: "echo hi > output/note.txt" },
      })
    ).json()) as Result;
    expect(cmd.artifacts.map((a) => a.name)).toEqual(["note.txt"]);
    const fig = await server.request("GET", `${base}/artifacts/fig.png`, { token: ann });
    expect(fig.headers.get("content-type")).toBe("image/png");
    expect((await server.request("GET", `${base}/artifacts/fig.png`, { token: bob })).status).toBe(
      404,
    );
    expect((await server.request("DELETE", base, { token: ann })).status).toBe(204);
    // Artifacts outlive the session until their retention ends.
    expect((await server.request("GET", `${base}/artifacts/note.txt`, { token: ann })).status).toBe(
      200,
    );
  }, 60_000);
});
