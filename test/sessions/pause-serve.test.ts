/**
 * Pause, snapshots and watches through `warden serve` as a client sees them:
 * routes, the 409 a paused session answers, the SSE watch stream, and a
 * Warden that stops (or is killed) with a paused session leaving nothing.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { KEEP_WARM_CGROUP } from "../helpers/sandbox.js";
import { createKey, startServer, type TestServer } from "../helpers/server.js";

// A world of its own, so that the crash below is cleaned by this test's janitor only.
const env = {
  WARDEN_RUN_DIR: "/run/warden-h-pause",
  WARDEN_CGROUP_PARENT: "warden-h-pause",
  WARDEN_UID_BASE: "772000",
  WARDEN_UID_COUNT: "100",
};
const config = loadConfig({ env });
let server: TestServer;
let ann: string;
let bob: string;

beforeAll(async () => {
  server = await startServer({ env, config: { sessions: { maxSnapshotMb: 8 } } });
  ann = await createKey(server, "ann", "sessions", "ann");
  bob = await createKey(server, "bob", "sessions", "bob");
});
afterAll(async () => {
  await server?.stop();
});

const json = async <T>(r: Response): Promise<T> => (await r.json()) as T;

/** Reads an SSE response until `until` matches what came so far (or the stream ends). */
async function readEvents(r: Response, until: RegExp, timeoutMs = 20_000): Promise<string> {
  const body = r.body as unknown as AsyncIterable<Uint8Array>;
  const decoder = new TextDecoder();
  let text = "";
  const timer = setTimeout(() => void r.body?.cancel().catch(() => undefined), timeoutMs);
  try {
    for await (const chunk of body) {
      text += decoder.decode(chunk, { stream: true });
      if (until.test(text)) break;
    }
  } catch {
    // cancelled at the timeout: what came so far is the answer
  } finally {
    clearTimeout(timer);
  }
  return text;
}

/** Cgroups, workspaces and processes of this test's world. */
function leftovers(): string[] {
  const found: string[] = [];
  for (const ctl of ["memory", "freezer", "pids"]) {
    const dir = join("/sys/fs/cgroup", ctl, env.WARDEN_CGROUP_PARENT);
    if (existsSync(dir))
      found.push(
        ...readdirSync(dir, { withFileTypes: true })
          .filter((e) => e.isDirectory() && !KEEP_WARM_CGROUP.test(e.name))
          .map((e) => `${ctl}/${e.name}`),
      );
  }
  const boxes = join(config.runDir, "boxes");
  if (existsSync(boxes)) found.push(...readdirSync(boxes).map((b) => `box ${b}`));
  return found;
}

describe("pause over REST", () => {
  it("pauses (409 SESSION_PAUSED to calls), resumes, snapshots and restores", async () => {
    const s = await json<{ id: string }>(
      await server.request("POST", "/v1/sessions", { token: ann, body: {} }),
    );
    const base = `/v1/sessions/${s.id}`;
    await server.request("PUT", `${base}/files/note.txt`, { token: ann, raw: "kept" });
    const paused = await server.request("POST", `${base}/pause`, { token: ann });
    expect(paused.status).toBe(200);
    expect(await json(paused)).toMatchObject({ state: "paused", snapshotId: null });
    // Someone else's session is not theirs to pause.
    expect((await server.request("POST", `${base}/resume`, { token: bob })).status).toBe(404);

    const refused = await server.request("POST", `${base}/commands`, {
      token: ann,
      body: { command: "true" },
    });
    expect(refused.status).toBe(409);
    const body = await json<{ error: { code: string; message: string } }>(refused);
    expect(body.error.code).toBe("SESSION_PAUSED");
    expect(body.error.message).toContain(`${base}/resume`);
    const preview = await server.request("GET", `${base}/ports/8000/`, { token: ann });
    expect(preview.status).toBe(409);

    // A paused session can be snapshotted (it runs for as long as that takes).
    const snap = await server.request("POST", `${base}/snapshots`, { token: ann });
    expect(snap.status).toBe(201);
    const snapshot = await json<{ id: string; entries: number }>(snap);
    expect(
      (await json<{ state: string }>(await server.request("GET", base, { token: ann }))).state,
    ).toBe("paused");
    expect((await server.request("POST", `${base}/resume`, { token: ann })).status).toBe(200);
    const cat = await server.request("POST", `${base}/commands`, {
      token: ann,
      body: { command: "cat note.txt" },
    });
    expect((await json<{ stdout: string }>(cat)).stdout).toBe("kept");

    const listed = await json<{ id: string }[]>(
      await server.request("GET", "/v1/snapshots", { token: ann }),
    );
    expect(listed.map((x) => x.id)).toContain(snapshot.id);
    expect(await json(await server.request("GET", "/v1/snapshots", { token: bob }))).toEqual([]);
    expect(
      (await server.request("GET", `/v1/snapshots/${snapshot.id}`, { token: bob })).status,
    ).toBe(404);
    const forked = await server.request("POST", "/v1/sessions", {
      token: ann,
      body: { snapshot: snapshot.id },
    });
    expect(forked.status).toBe(201);
    const fork = await json<{ id: string }>(forked);
    const read = await server.request("GET", `/v1/sessions/${fork.id}/files/note.txt`, {
      token: ann,
    });
    expect(await read.text()).toBe("kept");
    expect(
      (await server.request("DELETE", `/v1/snapshots/${snapshot.id}`, { token: ann })).status,
    ).toBe(204);
    expect(
      (
        await server.request("POST", "/v1/sessions", {
          token: ann,
          body: { snapshot: snapshot.id },
        })
      ).status,
    ).toBe(404);
    for (const id of [s.id, fork.id])
      expect((await server.request("DELETE", `/v1/sessions/${id}`, { token: ann })).status).toBe(
        204,
      );
  });

  it("streams file changes as SSE; refuses a path out of /workspace; ends when the session is deleted", async () => {
    const s = await json<{ id: string }>(
      await server.request("POST", "/v1/sessions", { token: ann, body: {} }),
    );
    const base = `/v1/sessions/${s.id}`;
    const out = await server.request("GET", `${base}/watch?path=/etc`, { token: ann });
    expect(out.status).toBe(400);
    const watch = await server.request("GET", `${base}/watch?path=/workspace&recursive=true`, {
      token: ann,
      headers: { accept: "text/event-stream" },
    });
    expect(watch.headers.get("content-type")).toMatch(/text\/event-stream/);
    const events = readEvents(watch, /event: end/);
    await server.request("PUT", `${base}/files/sub/hello.txt`, { token: ann, raw: "hi" });
    await new Promise((r) => setTimeout(r, 500));
    expect((await server.request("DELETE", base, { token: ann })).status).toBe(204);
    const text = await events;
    expect(text).toMatch(
      /event: change\ndata: \{"kind":"(created|modified)","path":"sub\/hello.txt","type":"file"\}/,
    );
    expect(text).toMatch(/^id: 1\nevent: watching\n/);
    expect(text).toMatch(/event: end\ndata: \{"reason":"session ended/);
  });

  it("leaves nothing of a paused session when Warden stops, or is killed and restarted", async () => {
    const other = await startServer({ env });
    let next: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      const token = await createKey(other, "cy", "sessions", "cy");
      for (let i = 0; i < 2; i++) {
        const s = await json<{ id: string }>(
          await other.request("POST", "/v1/sessions", { token, body: {} }),
        );
        const bg = await other.request("POST", `/v1/sessions/${s.id}/commands`, {
          token,
          body: { command: "while true; do :; done", background: true },
        });
        expect(bg.status).toBeLessThan(300);
        expect((await other.request("POST", `/v1/sessions/${s.id}/pause`, { token })).status).toBe(
          200,
        );
      }
      // Killed outright: its frozen cgroups stay until the next Warden's janitor.
      await other.stop("SIGKILL");
      expect(leftovers().length).toBeGreaterThan(0);
      next = await startServer({ env, dataDir: other.dataDir });
      expect(leftovers()).toEqual([]);
      // And a paused session at a graceful stop.
      const s = await json<{ id: string }>(
        await next.request("POST", "/v1/sessions", { token, body: {} }),
      );
      await next.request("POST", `/v1/sessions/${s.id}/pause`, { token });
      await next.stop();
      expect(leftovers()).toEqual([]);
    } finally {
      // Whatever failed above, no server outlives the test.
      await next?.stop("SIGKILL");
      await other.stop("SIGKILL");
    }
  });
});
