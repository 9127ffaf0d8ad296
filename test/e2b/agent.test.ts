/**
 * Issue 17's "done when", tried as a new user would: the pinned `e2b` and
 * `@e2b/code-interpreter` packages, configured only by their environment
 * variables, pointed at a Warden this test starts. An agent-style script
 * creates a sandbox, writes a CSV, analyses it with pandas, gets a plot back
 * as PNG, runs a background command and reads its output, and kills the
 * sandbox; and the `e2b` README quick start runs as written.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lastJson, runScript, startE2bWarden, type E2bWarden } from "./sdk.js";

let w: E2bWarden;

beforeAll(async () => {
  w = await startE2bWarden();
}, 60_000);
afterAll(async () => w?.server.stop());

describe("an agent's script end to end", () => {
  it("create, CSV, pandas, a PNG plot, a background command, kill", async () => {
    const r = await runScript(
      w,
      `
import { Sandbox } from "@e2b/code-interpreter";

const sbx = await Sandbox.create({ timeoutMs: 120_000, metadata: { run: "agent" }, envs: { GREETING: "hi" } });
await sbx.files.write("/home/user/data.csv", "city,temp\\nOslo,4\\nRome,18\\nCairo,29\\n");

const stats = await sbx.runCode(\`
import pandas as pd
df = pd.read_csv("/home/user/data.csv")
df.describe()
\`);
const mean = await sbx.runCode('df["temp"].mean()');
const plot = await sbx.runCode(\`
import matplotlib.pyplot as plt
plt.bar(df["city"], df["temp"])
plt.title("temperature")
plt.show()
\`);
const png = plot.results.find((r) => r.png)?.png ?? "";

const seen = [];
const handle = await sbx.commands.run("for i in 1 2 3; do echo $i; sleep 0.2; done", {
  background: true,
  onStdout: (data) => seen.push(data),
});
const done = await handle.wait();
const greeting = await sbx.commands.run("echo $GREETING");

const info = await sbx.getInfo();
await sbx.kill();
console.log(JSON.stringify({
  statsText: stats.text, statsHtml: stats.results[0]?.html ?? "", statsError: stats.error ?? null,
  mean: mean.text,
  pngMagic: Buffer.from(png, "base64").subarray(0, 8).toString("hex"),
  seen: seen.join(""), stdout: done.stdout, exitCode: done.exitCode,
  greeting: greeting.stdout, metadata: info.metadata,
  running: await sbx.isRunning(),
}));
`,
      { timeoutMs: 180_000 },
    );
    const out = lastJson<{
      statsText: string;
      statsHtml: string;
      statsError: unknown;
      mean: string;
      pngMagic: string;
      seen: string;
      stdout: string;
      exitCode: number;
      greeting: string;
      metadata: Record<string, string>;
      running: boolean;
    }>(r);
    expect(out.statsError).toBeNull();
    expect(out.statsText).toContain("count");
    expect(out.statsHtml).toContain("<table");
    expect(out.mean).toBe("17.0");
    expect(out.pngMagic).toBe("89504e470d0a1a0a");
    expect(out.seen).toBe("1\n2\n3\n");
    expect(out.stdout).toBe("1\n2\n3\n");
    expect(out.exitCode).toBe(0);
    expect(out.greeting).toBe("hi\n");
    expect(out.metadata).toMatchObject({ run: "agent" });
    expect(out.running).toBe(false);
    const left = await w.server.request("GET", "/v1/sessions", { token: w.apiKey });
    expect(await left.json()).toEqual([]);
  }, 240_000);

  it("runs the e2b README quick start unchanged", async () => {
    const readme = `import { Sandbox } from 'e2b'

const sandbox = await Sandbox.create()
const result = await sandbox.commands.run('echo "Hello from E2B!"')
console.log(result.stdout) // Hello from E2B!
`;
    const r = await runScript(w, readme);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("Hello from E2B!\n\n");
    // The quick start leaves its sandbox running, as on E2B: end it here.
    const res = await w.server.request("GET", "/v1/sessions", { token: w.apiKey });
    for (const s of (await res.json()) as { id: string }[])
      await w.server.request("DELETE", `/v1/sessions/${s.id}`, { token: w.apiKey });
  }, 120_000);
});
