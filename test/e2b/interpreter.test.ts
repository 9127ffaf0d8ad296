/**
 * The published `@e2b/code-interpreter` SDK against Warden, configured only
 * by E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY: its README quick start as
 * written, runCode with callbacks, errors, plots, DataFrames and JavaScript,
 * per-cell env, code contexts, and a client-side timeout. Each script runs
 * as a child `node` process, the way a user's program would. Also prints the
 * latency of runCode against Warden's own /run for the same cell.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { lastJson, runScript, startE2bWarden, type E2bWarden } from "./sdk.js";

let w: E2bWarden;

beforeAll(async () => {
  w = await startE2bWarden({ maxSessionsPerUser: 6 });
}, 60_000);
afterAll(async () => w?.server.stop());
// Whatever a script left (it may have failed before its kill()).
afterEach(async () => {
  const res = await w.server.request("GET", "/v1/sessions", { token: w.apiKey });
  for (const s of (await res.json()) as { id: string }[])
    await w.server.request("DELETE", `/v1/sessions/${s.id}`, { token: w.apiKey });
});

/** A script that creates a sandbox, runs `body`, prints its last value as JSON and kills it. */
const script = (body: string): string => `
import { Sandbox } from "@e2b/code-interpreter";
const sbx = await Sandbox.create();
try {
  const out = await (async () => { ${body} })();
  console.log(JSON.stringify(out));
} finally {
  await sbx.kill();
}
// A runCode that fails before its answer streams leaves the SDK's request timer
// (requestTimeoutMs, 60 s) running, which would keep this process alive.
process.exit(0);`;

describe("@e2b/code-interpreter against Warden", () => {
  it("runs the README quick start unchanged", async () => {
    const readme = `import { Sandbox } from '@e2b/code-interpreter'

const sbx = await Sandbox.create()
await sbx.runCode('x = 1')

const execution = await sbx.runCode('x+=1; x')
console.log(execution.text)  // outputs 2
`;
    const r = await runScript(w, readme);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("2");
  }, 120_000);

  it("streams output and results to callbacks; errors, plots, DataFrames, JavaScript, env", async () => {
    const r = await runScript(
      w,
      script(`
      const stdout = [], stderr = [], results = [];
      const printed = await sbx.runCode('import sys\\nprint("hello")\\nprint("oops", file=sys.stderr)\\n6 * 7', {
        onStdout: (m) => stdout.push(m.line),
        onStderr: (m) => stderr.push(m.line),
        onResult: (r) => results.push(r.text),
      });
      const zero = await sbx.runCode('1/0');
      const plot = await sbx.runCode('import matplotlib.pyplot as plt\\nplt.plot([1, 4, 9])\\nplt.show()');
      const png = plot.results.find((r) => r.png)?.png ?? '';
      const df = await sbx.runCode('import pandas as pd\\npd.DataFrame({"a": [1, 2, 3]}).describe()');
      const js = await sbx.runCode('const o = { a: 1, b: [2, 3] }; o', { language: 'js' });
      const ts = await sbx.runCode('const n: number = 5; n * 2', { language: 'ts' });
      const quoted = await sbx.runCode('"abc"');
      const env = await sbx.runCode('import os; os.environ.get("GREETING")', { envs: { GREETING: 'hi' } });
      const gone = await sbx.runCode('import os; repr(os.environ.get("GREETING"))');
      const r = await sbx.runCode('"R"', { language: 'r' });
      return {
        stdout, stderr, results, count: printed.executionCount, text: printed.text,
        zero: zero.error,
        pngMagic: Buffer.from(png, 'base64').subarray(0, 8).toString('hex'),
        df: { text: df.text, html: df.results[0]?.html ?? '' },
        js: { text: js.text, json: js.results[0]?.json },
        ts: ts.text, quoted: quoted.text, env: env.text, gone: gone.text,
        r: r.error,
      };
    `),
    );
    interface Failure {
      name: string;
      value: string;
      traceback: string;
    }
    const out = lastJson<{
      stdout: string[];
      stderr: string[];
      results: string[];
      count: number;
      text: string;
      zero: Failure;
      pngMagic: string;
      df: { text: string; html: string };
      js: { text: string; json: unknown };
      ts: string;
      quoted: string;
      env: string;
      gone: string;
      r: Failure;
    }>(r);
    expect(out.stdout).toEqual(["hello\n"]);
    expect(out.stderr).toEqual(["oops\n"]);
    expect(out.results).toEqual(["42"]);
    expect(out.text).toBe("42");
    expect(out.count).toBeGreaterThan(0);
    expect(out.zero.name).toBe("ZeroDivisionError");
    expect(out.zero.value).toContain("division by zero");
    expect(out.zero.traceback).toContain("ZeroDivisionError");
    expect(out.pngMagic).toBe("89504e470d0a1a0a");
    expect(out.df.text).toContain("count");
    expect(out.df.html).toContain("<table");
    expect(out.js.json).toEqual({ a: 1, b: [2, 3] });
    expect(out.ts).toBe("10");
    expect(out.quoted).toBe("abc");
    expect(out.env).toBe("hi");
    expect(out.gone).toBe("None");
    expect(out.r.name).toBe("NotSupported");
    expect(out.r.value).toContain("python");
  }, 180_000);

  it("makes, lists, restarts and removes code contexts", async () => {
    const r = await runScript(
      w,
      script(`
      await sbx.runCode('import os; os.makedirs("proj", exist_ok=True)');
      const ctx = await sbx.createCodeContext({ cwd: '/home/user/proj' });
      const cwd = await sbx.runCode('import os; os.getcwd()', { context: ctx });
      await sbx.runCode('y = 5', { context: ctx });
      const before = await sbx.runCode('y', { context: ctx });
      const isolated = await sbx.runCode('y');
      const listed = await sbx.listCodeContexts();
      await sbx.restartCodeContext(ctx);
      const after = await sbx.runCode('y', { context: ctx });
      const js = await sbx.createCodeContext({ language: 'js' });
      const jsText = (await sbx.runCode('let z = 3; z + 1', { context: js })).text;
      await sbx.removeCodeContext(ctx);
      const removed = await sbx.runCode('1', { context: ctx }).then(() => null, (e) => ({ name: e.name, message: e.message }));
      const bad = await sbx.createCodeContext({ language: 'r' }).then(() => null, (e) => ({ name: e.name, message: e.message }));
      return {
        ctx, cwd: cwd.text, before: before.text, isolated: isolated.error?.name, after: after.error?.name,
        listed: listed.map((c) => c.id), jsText, left: (await sbx.listCodeContexts()).map((c) => c.id), removed, bad,
      };
    `),
    );
    const out = lastJson<{
      ctx: { id: string; language: string; cwd: string };
      cwd: string;
      before: string;
      isolated: string;
      after: string;
      listed: string[];
      jsText: string;
      left: string[];
      removed: { name: string; message: string };
      bad: { name: string; message: string };
    }>(r);
    expect(out.ctx).toMatchObject({ language: "python", cwd: "/home/user/proj" });
    expect(out.cwd).toBe("/workspace/proj");
    expect(out.before).toBe("5");
    expect(out.isolated).toBe("NameError");
    expect(out.listed).toEqual(expect.arrayContaining(["python", "javascript", out.ctx.id]));
    expect(out.after).toBe("NameError");
    expect(out.jsText).toBe("4");
    expect(out.left).not.toContain(out.ctx.id);
    expect(out.removed).toEqual({
      name: "NotFoundError",
      message: `Context ${out.ctx.id} not found`,
    });
    expect(out.bad.name).toBe("NotFoundError");
    expect(out.bad.message).toContain("python");
  }, 180_000);

  it("a runCode past its timeoutMs throws TimeoutError, and the cell is interrupted", async () => {
    const r = await runScript(
      w,
      script(`
      await sbx.runCode('n = 1');
      const slow = await sbx.runCode('import time\\ntime.sleep(60)\\nn = 2', { timeoutMs: 2000 })
        .then(() => null, (e) => e.name);
      const t0 = Date.now();
      const next = await sbx.runCode('n');
      return { slow, next: next.text, waitedMs: Date.now() - t0 };
    `),
    );
    const out = lastJson<{ slow: string; next: string; waitedMs: number }>(r);
    expect(out.slow).toBe("TimeoutError");
    expect(out.next).toBe("1");
    // Interrupted, not waited out: the next cell did not sit behind a 60 s sleep.
    expect(out.waitedMs).toBeLessThan(30_000);
  }, 180_000);

  it("prints runCode('1+1') against POST /v1/sessions/:id/run (median of 10, same run)", async () => {
    const r = await runScript(
      w,
      script(`
      await sbx.runCode('0');
      const sdk = [], rest = [];
      const id = 'sess_' + sbx.sandboxId.toUpperCase();
      for (let i = 0; i < 10; i++) {
        let t = performance.now();
        const e = await sbx.runCode('1+1');
        sdk.push(performance.now() - t);
        if (e.text !== '2') throw new Error('runCode: ' + e.text);
        t = performance.now();
        const res = await fetch(process.env.WARDEN_URL + '/v1/sessions/' + id + '/run', {
          method: 'POST',
          headers: { authorization: 'Bearer ' + process.env.E2B_API_KEY, 'content-type': 'application/json' },
          body: JSON.stringify({ code: '1+1' }),
        });
        const body = await res.json();
        rest.push(performance.now() - t);
        if (body.results?.[0]?.data?.['text/plain'] !== '2') throw new Error('run: ' + JSON.stringify(body));
      }
      const median = (a) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)];
      return { sdkMs: median(sdk), restMs: median(rest) };
    `),
      { env: { WARDEN_URL: w.server.url } },
    );
    const out = lastJson<{ sdkMs: number; restMs: number }>(r);
    console.error(
      `runCode('1+1') median of 10: SDK ${out.sdkMs.toFixed(1)} ms, POST /v1/sessions/:id/run ${out.restMs.toFixed(1)} ms (ratio ${(out.sdkMs / out.restMs).toFixed(2)})`,
    );
    expect(out.sdkMs).toBeGreaterThan(0);
  }, 180_000);
});
