/**
 * `sandbox.commands` of E2B's SDK (e2b@2.51.0, unmodified, in a child node
 * process) against a real `warden serve`: process.Process over the session's
 * background commands (src/http/e2b/process.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lastJson, runScript, startE2bWarden, type E2bWarden } from "./sdk.js";
import { planeSandbox, type PlaneSandbox } from "./plane-session.js";

let w: E2bWarden;
let s: PlaneSandbox;

beforeAll(async () => {
  w = await startE2bWarden();
  s = await planeSandbox(w);
});
afterAll(async () => {
  await w?.server.stop();
});

async function run<T = Record<string, unknown>>(body: string): Promise<T> {
  const r = await runScript(w, `${s.prelude}\n${body}`);
  return lastJson<T>(r);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe("commands.run", () => {
  it("stdout, exit code, callbacks, cwd, envs, a failing exit, root refused", async () => {
    const out = await run(`
const seen = [];
const a = await sbx.commands.run("echo hi; echo oops >&2", { onStdout: (d) => seen.push("out:" + d), onStderr: (d) => seen.push("err:" + d) });
const cwd = await sbx.commands.run("pwd; mkdir -p sub && cd sub && pwd", { cwd: "/home/user" });
const sub = await sbx.commands.run("pwd", { cwd: "/home/user/sub" });
const env = await sbx.commands.run("echo $GREETING-$OTHER", { envs: { GREETING: "hello", OTHER: "x" } });
const exit3 = await errorOf(sbx.commands.run("exit 3"));
const root = await errorOf(sbx.commands.run("id", { user: "root" }));
const asUser = await sbx.commands.run("echo ok", { user: "user" });
const outside = await errorOf(sbx.commands.run("pwd", { cwd: "/etc" }));
console.log(JSON.stringify({ a, seen, cwd: cwd.stdout, sub: sub.stdout, env: env.stdout, exit3, root, asUser: asUser.stdout, outside }));
`);
    expect(out.a).toMatchObject({ exitCode: 0, stdout: "hi\n", stderr: "oops\n" });
    expect(out.seen).toEqual(["out:hi\n", "err:oops\n"]);
    // /home/user is the workspace (a symlink to /workspace inside the sandbox).
    expect(out.cwd).toMatch(/^\/(workspace|home\/user)\n\/(workspace|home\/user)\/sub\n$/);
    expect(out.sub).toMatch(/^\/(workspace|home\/user)\/sub\n$/);
    expect(out.env).toBe("hello-x\n");
    expect(out.exit3).toMatchObject({ name: "CommandExitError", exitCode: 3 });
    expect(out.root).toMatchObject({ name: "SandboxError" });
    expect((out.root as { message: string }).message).toMatch(
      /permission_denied.*one unprivileged user/,
    );
    expect(out.asUser).toBe("ok\n");
    expect(out.outside).toMatchObject({ name: "InvalidArgumentError" });
    expect((out.outside as { message: string }).message).toMatch(/under \/home\/user/);
  });

  it("timeoutMs kills the command (Warden's clock) and the SDK throws its TimeoutError", async () => {
    const out = await run(`
const t0 = Date.now();
const e = await errorOf(sbx.commands.run("sleep 30", { timeoutMs: 1500 }));
console.log(JSON.stringify({ e, ms: Date.now() - t0 }));
`);
    expect(out.e).toMatchObject({ name: "TimeoutError" });
    expect(out.ms as number).toBeLessThan(25_000);
    // The command itself is gone, ended by Warden as `timeout` (not only the client's wait).
    await until(async () => {
      const res = await w.server.request("GET", `/v1/sessions/${s.sessionId}/commands`, {
        token: w.apiKey,
      });
      const list = (await res.json()) as { command: string[]; status: string }[];
      return list.some((c) => c.command.at(-1) === "sleep 30" && c.status === "timeout");
    });
  });
});

describe("background commands", () => {
  it("wait, sendStdin to cat, list, connect (new output only), closeStdin, kill", async () => {
    const out = await run(`
const bg = await sbx.commands.run("for i in 1 2 3; do echo $i; sleep 0.2; done", { background: true });
const counted = await bg.wait();
const got = [];
const cat = await sbx.commands.run("cat", { background: true, stdin: true, timeoutMs: 0, onStdout: (d) => got.push(d) });
await sbx.commands.sendStdin(cat.pid, "hello\\n");
const waitFor = async (f) => { for (let i = 0; i < 100 && !f(); i++) await new Promise((r) => setTimeout(r, 100)); };
await waitFor(() => got.join("").includes("hello"));
const listed = await sbx.commands.list();
const again = [];
const attached = await sbx.commands.connect(cat.pid, { onStdout: (d) => again.push(d), timeoutMs: 0 });
await cat.sendStdin("again\\n");
await waitFor(() => again.join("").includes("again"));
await cat.closeStdin();
const catEnd = await cat.wait();
const attachedEnd = await attached.wait();
const sleeper = await sbx.commands.run("sleep 30", { background: true, timeoutMs: 0 });
const killed = await sleeper.kill();
const sleepEnd = await errorOf(sleeper.wait());
const killAgain = await sbx.commands.kill(sleeper.pid);
const unknown = await sbx.commands.kill(999999);
const afterList = await sbx.commands.list();
console.log(JSON.stringify({ counted, got: got.join(""), listed, catPid: cat.pid, again: again.join(""), catEnd, attachedEnd: attachedEnd.stdout, killed, sleepEnd, killAgain, unknown, afterList }));
`);
    expect(out.counted).toMatchObject({ exitCode: 0, stdout: "1\n2\n3\n" });
    expect(out.got).toBe("hello\nagain\n");
    const listed = out.listed as { pid: number; cmd: string; args: string[] }[];
    expect(listed.find((p) => p.pid === out.catPid)).toMatchObject({
      cmd: "/bin/bash",
      args: ["-l", "-c", "cat"],
    });
    // Connect sends only what comes after it, as envd does.
    expect(out.again).toBe("again\n");
    expect(out.attachedEnd).toBe("again\n");
    expect(out.catEnd).toMatchObject({ exitCode: 0, stdout: "hello\nagain\n" });
    expect(out.killed).toBe(true);
    expect(out.sleepEnd).toMatchObject({ name: "CommandExitError", exitCode: -1 });
    expect((out.sleepEnd as { message: string }).message).toBe("signal: killed");
    expect(out.killAgain).toBe(false);
    expect(out.unknown).toBe(false);
    expect((out.afterList as unknown[]).length).toBe(0);
  });

  it("figure: commands.run('true') through the SDK vs POST /v1/sessions/:id/commands", async () => {
    const sdk = await run<{ ms: number[] }>(`
const ms = [];
await sbx.commands.run("true");
for (let i = 0; i < 10; i++) { const t = performance.now(); await sbx.commands.run("true"); ms.push(performance.now() - t); }
console.log(JSON.stringify({ ms }));
`);
    const rest: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      const res = await w.server.request("POST", `/v1/sessions/${s.sessionId}/commands`, {
        token: w.apiKey,
        body: { command: ["/bin/bash", "-l", "-c", "true"] },
      });
      expect(res.status).toBe(200);
      rest.push(performance.now() - t);
    }
    const [a, b] = [median(sdk.ms), median(rest)];
    console.error(
      `commands.run('true') median of 10: SDK ${a.toFixed(1)} ms, REST ${b.toFixed(1)} ms (ratio ${(a / b).toFixed(2)})`,
    );
  });
});

async function until(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 200));
  }
}
