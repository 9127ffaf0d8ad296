/**
 * E2B's control API driven by the published SDK (`e2b`), as a user would:
 * scripts run in a child `node` whose only settings are E2B_API_URL,
 * E2B_SANDBOX_URL and E2B_API_KEY, against a real `warden serve`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey } from "../helpers/server.js";
import { lastJson, runScript, startE2bWarden, type E2bWarden } from "./sdk.js";

let w: E2bWarden;

beforeAll(async () => {
  w = await startE2bWarden({ maxSessionsPerUser: 6, maxSessionTimeout: 3600 });
}, 60_000);

afterAll(async () => {
  await w?.server.stop();
});

const sessionId = (e2bId: string): string => `sess_${e2bId.toUpperCase()}`;

describe("E2B control API through the SDK", () => {
  it("creates, lists, inspects, times, pauses, resumes and kills a sandbox", async () => {
    const r = await runScript(
      w,
      `
      import { Sandbox } from "e2b";
      const out = {};
      const sbx = await Sandbox.create({ timeoutMs: 120_000, metadata: { run: "ctl", who: "a b" }, envs: { GREETING: "hi there" } });
      out.id = sbx.sandboxId;
      const info = await sbx.getInfo();
      out.info = { metadata: info.metadata, state: info.state, templateId: info.templateId,
        lifeS: (info.endAt - info.startedAt) / 1000 };
      out.listed = (await Sandbox.list({ query: { metadata: { who: "a b" } } }).nextItems()).map((s) => s.sandboxId);
      out.none = (await Sandbox.list({ query: { metadata: { run: "other" } } }).nextItems()).length;
      out.pausedList = (await Sandbox.list({ query: { state: ["paused"] } }).nextItems()).length;
      await sbx.setTimeout(30_000);
      const shorter = await sbx.getInfo();
      out.afterSetS = (shorter.endAt - Date.now()) / 1000;
      out.running = await sbx.isRunning();
      const m = await sbx.getMetrics();
      out.metrics = { n: m.length, memUsed: m[0]?.memUsed, memTotal: m[0]?.memTotal, cpuCount: m[0]?.cpuCount };
      out.paused = await sbx.pause();
      out.pausedAgain = await sbx.pause();
      out.stateAfterPause = (await sbx.getInfo()).state;
      out.existsWhilePaused = await sbx.isRunning();
      out.pausedListed = (await Sandbox.list({ query: { state: ["paused"] } }).nextItems()).map((s) => s.sandboxId);
      const again = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 60_000 });
      out.stateAfterConnect = (await again.getInfo()).state;
      console.log(JSON.stringify(out));
      `,
    );
    const out = lastJson<Record<string, unknown>>(r);
    const id = out.id as string;
    expect(id).toMatch(/^[0-9a-z]{26}$/);
    expect(out.info).toMatchObject({
      metadata: { run: "ctl", who: "a b" },
      state: "running",
      templateId: "base",
    });
    expect((out.info as { lifeS: number }).lifeS).toBeCloseTo(120, -1);
    expect(out.listed).toEqual([id]);
    expect(out.none).toBe(0);
    expect(out.pausedList).toBe(0);
    // setTimeout shortened the sandbox's life (E2B's semantics; Warden's extend never shortens).
    expect(out.afterSetS as number).toBeLessThanOrEqual(31);
    expect(out.afterSetS as number).toBeGreaterThan(20);
    expect(out.running).toBe(true);
    expect(out.metrics).toMatchObject({ n: 1, cpuCount: 1 });
    expect((out.metrics as { memUsed: number }).memUsed).toBeGreaterThan(0);
    expect(out.paused).toBe(true);
    expect(out.pausedAgain).toBe(false);
    expect(out.stateAfterPause).toBe("paused");
    expect(out.existsWhilePaused).toBe(true);
    expect(out.pausedListed).toEqual([id]);
    expect(out.stateAfterConnect).toBe("running");

    // The create's envs are the session's: a command, a background command and a kernel see them.
    const sid = sessionId(id);
    const cmd = await w.server.request("POST", `/v1/sessions/${sid}/commands`, {
      token: w.apiKey,
      body: { command: "echo $GREETING" },
    });
    expect(((await cmd.json()) as { stdout: string }).stdout).toBe("hi there\n");
    const cell = await w.server.request("POST", `/v1/sessions/${sid}/run`, {
      token: w.apiKey,
      body: { code: "import os; print(os.environ['GREETING'])" },
    });
    expect(((await cell.json()) as { stdout: string }).stdout).toBe("hi there\n");

    const k = await runScript(
      w,
      `
      import { Sandbox } from "e2b";
      const sbx = await Sandbox.connect(${JSON.stringify(id)});
      const killed = await sbx.kill();
      const after = await sbx.isRunning();
      const again = await Sandbox.kill(${JSON.stringify(id)});
      let info = null;
      try { await Sandbox.getInfo(${JSON.stringify(id)}); } catch (e) { info = e.constructor.name; }
      console.log(JSON.stringify({ killed, after, again, info }));
      `,
    );
    expect(lastJson(k)).toEqual({
      killed: true,
      after: false,
      again: false,
      info: "SandboxNotFoundError",
    });
  });

  it("answers gaps and refusals with the SDK's own error classes", async () => {
    const other = await createKey(w.server, "e2b-other", "sessions", "e2b-other");
    const mine = await runScript(
      w,
      `import { Sandbox } from "e2b";
       const s = await Sandbox.create({ timeoutMs: 60_000, metadata: { owner: "me" } });
       console.log(JSON.stringify({ id: s.sandboxId }));`,
    );
    const { id } = lastJson<{ id: string }>(mine);
    const r = await runScript(
      w,
      `
      import { Sandbox } from "e2b";
      const out = {};
      const err = async (name, f) => {
        try { await f(); out[name] = "no error"; }
        catch (e) { out[name] = { cls: e.constructor.name, message: String(e.message) }; }
      };
      await err("template", () => Sandbox.create("no-such-template"));
      await err("internet", () => Sandbox.create({ allowInternetAccess: true }));
      await err("autoPause", () => Sandbox.create({ lifecycle: { onTimeout: "pause" } }));
      await err("snapshot", () => Sandbox.createSnapshot(${JSON.stringify(id)}));
      await err("fork", () => Sandbox.fork(${JSON.stringify(id)}));
      await err("badKey", () => Sandbox.list({ apiKey: "wk_not_a_key" }).nextItems());
      await err("othersConnect", () => Sandbox.connect(${JSON.stringify(id)}, { apiKey: process.env.OTHER }));
      await err("othersInfo", () => Sandbox.getInfo(${JSON.stringify(id)}, { apiKey: process.env.OTHER }));
      out.othersKill = await Sandbox.kill(${JSON.stringify(id)}, { apiKey: process.env.OTHER });
      out.othersList = (await Sandbox.list({ apiKey: process.env.OTHER }).nextItems()).length;
      console.log(JSON.stringify(out));
      `,
      { env: { OTHER: other } },
    );
    const out = lastJson<Record<string, { cls: string; message: string }>>(r);
    expect(out.template!.cls).toBe("SandboxError");
    expect(out.template!.message).toMatch(
      /404: template 'no-such-template' is not known.*environments/,
    );
    expect(out.internet!.message).toMatch(/400: allow_internet_access: not supported/);
    expect(out.autoPause!.message).toMatch(/400: autoPause: not supported/);
    expect(out.snapshot).toMatchObject({ cls: "SandboxError" });
    expect(out.snapshot!.message).toMatch(/501: Sandbox.createSnapshot .*is not supported/);
    expect(out.fork!.message).toMatch(/501: Sandbox.fork is not supported/);
    expect(out.badKey!.cls).toBe("AuthenticationError");
    expect(out.othersConnect!.cls).toBe("SandboxNotFoundError");
    expect(out.othersInfo!.cls).toBe("SandboxNotFoundError");
    expect(out.othersKill).toBe(false);
    expect(out.othersList).toBe(0);
    // The other user's tries left the sandbox alone.
    const still = await w.server.request("GET", `/v1/sessions/${sessionId(id)}`, {
      token: w.apiKey,
    });
    expect(((await still.json()) as { state: string }).state).toBe("running");
    await w.server.request("DELETE", `/v1/sessions/${sessionId(id)}`, { token: w.apiKey });
  });

  it("answers every refusal in E2B's shape, with no stack", async () => {
    const base = `${w.server.url}/e2b`;
    const bad = await fetch(`${base}/v2/sandboxes`, { headers: { "x-api-key": "nope" } });
    expect(bad.status).toBe(401);
    const body = (await bad.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["code", "message"]);
    expect(body.code).toBe(401);
    const none = await fetch(`${base}/sandboxes/01j0000000000000000000000a`, {
      headers: { "x-api-key": w.apiKey },
    });
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({ code: 404 });
    const invalid = await fetch(`${base}/v2/sandboxes`, {
      method: "POST",
      headers: { "x-api-key": w.apiKey, "content-type": "application/json" },
      body: '{"templateID": 5',
    });
    expect(invalid.status).toBe(400);
    const text = await invalid.text();
    expect(JSON.parse(text)).toMatchObject({ code: 400 });
    expect(text).not.toMatch(/at .*\.js:\d+/);
    // A path nobody serves: 501 naming it, without a key.
    const unknown = await fetch(`${base}/v9/whatever`);
    expect(unknown.status).toBe(501);
    expect(await unknown.json()).toMatchObject({ code: 501 });
  });

  it("measures Sandbox.create() against POST /v1/sessions (no threshold)", async () => {
    const r = await runScript(
      w,
      `
      import { Sandbox } from "e2b";
      const ms = [];
      for (let i = 0; i < 10; i++) {
        const t = performance.now();
        const s = await Sandbox.create({ timeoutMs: 60_000 });
        ms.push(performance.now() - t);
        await s.kill();
      }
      console.log(JSON.stringify({ ms }));
      `,
      { timeoutMs: 300_000 },
    );
    const sdk = lastJson<{ ms: number[] }>(r).ms;
    const rest: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      const res = await w.server.request("POST", "/v1/sessions", { token: w.apiKey, body: {} });
      rest.push(performance.now() - t);
      const { id } = (await res.json()) as { id: string };
      await w.server.request("DELETE", `/v1/sessions/${id}`, { token: w.apiKey });
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    console.log(
      `latency: Sandbox.create() median ${median(sdk).toFixed(0)} ms, POST /v1/sessions median ${median(rest).toFixed(0)} ms (10 each, same run)`,
    );
    expect(sdk).toHaveLength(10);
  }, 400_000);
});
