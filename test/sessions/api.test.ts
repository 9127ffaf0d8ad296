/** Sessions through `warden serve`: the REST routes, their owner checks and limits. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createKey,
  declaredUpload,
  eventually,
  startServer,
  type TestServer,
} from "../helpers/server.js";

let server: TestServer;
let ann: string;
let bob: string;

beforeAll(async () => {
  server = await startServer();
  ann = await createKey(server, "ann-app", "sessions", "ann");
  bob = await createKey(server, "bob-app", "sessions,execute", "bob");
});
afterAll(async () => {
  await server?.stop();
});

describe("REST /v1/sessions", () => {
  it("creates a session, runs commands in it, moves files, lists and deletes", async () => {
    const created = await server.request("POST", "/v1/sessions", {
      token: ann,
      body: { timeout: 600, metadata: { purpose: "test" } },
    });
    expect(created.status).toBe(201);
    const session = (await created.json()) as { id: string; userId: string };
    expect(session).toMatchObject({
      userId: "ann",
      status: "running",
      metadata: { purpose: "test" },
    });
    const base = `/v1/sessions/${session.id}`;

    const put = await server.request("PUT", `${base}/files/src/data.bin`, {
      token: ann,
      raw: "\u0000\u0001binary",
      headers: { "content-type": "application/octet-stream" },
    });
    expect(put.status).toBe(204);
    const cmd = (await (
      await server.request("POST", `${base}/commands`, {
        token: ann,
        body: { command: "wc -c < src/data.bin; echo x > out.txt" },
      })
    ).json()) as { stdout: string; status: string };
    expect(cmd).toMatchObject({ status: "completed", stdout: "8\n" });
    const argv = (await (
      await server.request("POST", `${base}/commands`, {
        token: ann,
        body: { command: ["cat", "out.txt"] },
      })
    ).json()) as { stdout: string };
    expect(argv.stdout).toBe("x\n");
    const download = await server.request("GET", `${base}/files/src/data.bin`, { token: ann });
    expect(download.headers.get("content-type")).toBe("application/octet-stream");
    expect(Buffer.from(await download.arrayBuffer())).toEqual(Buffer.from("\u0000\u0001binary"));
    const listing = (await (
      await server.request("GET", `${base}/files?dir=src`, { token: ann })
    ).json()) as { name: string }[];
    expect(listing.map((e) => e.name)).toEqual(["data.bin"]);
    expect((await server.request("POST", `${base}/dirs/a/b`, { token: ann })).status).toBe(204);
    expect((await server.request("DELETE", `${base}/files/out.txt`, { token: ann })).status).toBe(
      204,
    );

    // Another user sees nothing of it; an admin sees it listed.
    expect((await server.request("GET", base, { token: bob })).status).toBe(404);
    expect(
      (await server.request("POST", `${base}/commands`, { token: bob, body: { command: "true" } }))
        .status,
    ).toBe(404);
    const all = (await (await server.request("GET", "/v1/sessions")).json()) as { id: string }[];
    expect(all.map((s) => s.id)).toContain(session.id);
    // The admin's live view: memory and CPU read from the session's cgroup.
    const live = (await (await server.request("GET", "/api/sandbox/sessions")).json()) as {
      id: string;
      memoryBytes: number;
      cpuTimeMs: number;
    }[];
    const mine = live.find((x) => x.id === session.id);
    expect(mine?.memoryBytes).toBeGreaterThan(1024 * 1024);
    expect(mine?.cpuTimeMs).toBeGreaterThan(0);

    // The persistent Python context.
    await server.request("POST", `${base}/run`, { token: ann, body: { code: "x = 41" } });
    const cell = (await (
      await server.request("POST", `${base}/run`, { token: ann, body: { code: "x + 1" } })
    ).json()) as { results: { data: Record<string, string>; isMainResult: boolean }[] };
    expect(cell.results).toEqual([{ data: { "text/plain": "42" }, isMainResult: true }]);
    const ruby = await server.request("POST", `${base}/run`, {
      token: ann,
      body: { code: "1", language: "ruby" },
    });
    expect(ruby.status).toBe(400);

    expect((await server.request("DELETE", base, { token: ann })).status).toBe(204);
    expect((await server.request("GET", base, { token: ann })).status).toBe(404);
  });

  it("runs background commands: list, stream, stdin, kill; and streams foreground output as SSE", async () => {
    const created = await server.request("POST", "/v1/sessions", {
      token: ann,
      body: { language: "javascript" },
    });
    const session = (await created.json()) as { id: string; language: string };
    expect(session.language).toBe("javascript");
    const base = `/v1/sessions/${session.id}`;

    // A background `cat` that answers what it is sent, until its stdin closes.
    const started = await server.request("POST", `${base}/commands`, {
      token: ann,
      body: { command: ["sh", "-c", "echo ready; cat; echo bye >&2"], background: true },
    });
    expect(started.status).toBe(202);
    const cmd = (await started.json()) as { id: string; status: string };
    expect(cmd.status).toBe("running");
    const list = (await (
      await server.request("GET", `${base}/commands`, { token: ann })
    ).json()) as { id: string }[];
    expect(list.map((c) => c.id)).toEqual([cmd.id]);
    expect((await server.request("GET", `${base}/commands`, { token: bob })).status).toBe(404);

    const events = server.request("GET", `${base}/commands/${cmd.id}/events`, { token: ann });
    const fed = await server.request("POST", `${base}/commands/${cmd.id}/stdin`, {
      token: ann,
      body: { data: "hello\n", eof: true },
    });
    expect(fed.status).toBe(204);
    const stream = await (await events).text();
    // How the output is cut into events depends on timing ("ready" and "hello" may share one).
    const stdout = [...stream.matchAll(/event: stdout\ndata: (.*)\n/g)]
      .map((m) => (JSON.parse(m[1]!) as { data: string }).data)
      .join("");
    expect(stdout).toBe("ready\nhello\n");
    expect(stream).toContain("event: result");
    const done = (await (
      await server.request("GET", `${base}/commands/${cmd.id}`, { token: ann })
    ).json()) as { status: string; exitCode: number; stdout: string; stderr: string };
    expect(done).toMatchObject({ status: "completed", exitCode: 0, stdout: "ready\nhello\n" });
    expect(done.stderr).toBe("bye\n");

    // A server-like command that never ends is killed with everything it started.
    const sleeper = (await (
      await server.request("POST", `${base}/commands`, {
        token: ann,
        body: { command: "sleep 1000 & sleep 1000; echo not reached", background: true },
      })
    ).json()) as { id: string };
    const killed = await server.request("POST", `${base}/commands/${sleeper.id}/kill`, {
      token: ann,
      body: { signal: "SIGKILL" },
    });
    expect(killed.status).toBe(204);
    await eventually(async () => {
      const c = (await (
        await server.request("GET", `${base}/commands/${sleeper.id}`, { token: ann })
      ).json()) as { status: string; signal: string };
      return c.status === "killed" && c.signal === "SIGKILL";
    });
    const ps = (await (
      await server.request("POST", `${base}/commands`, {
        token: ann,
        body: { command: "cat /proc/[0-9]*/comm 2>/dev/null | grep -c ^sleep || true" },
      })
    ).json()) as { stdout: string };
    expect(ps.stdout.trim()).toBe("0");

    // Foreground output as Server-Sent Events, then the result; the session's
    // default language (javascript) runs the cell.
    const sse = await server.request("POST", `${base}/run`, {
      token: ann,
      body: { code: "console.log('streamed'); 6 * 7" },
      headers: { accept: "text/event-stream" },
    });
    expect(sse.headers.get("content-type")).toMatch(/text\/event-stream/);
    const body = await sse.text();
    expect(body.indexOf("event: stdout")).toBeLessThan(body.indexOf("event: result"));
    expect(body).toContain('"text/plain":"42"');
    const cmdSse = await (
      await server.request("POST", `${base}/commands`, {
        token: ann,
        body: { command: "echo one; echo two >&2; exit 3" },
        headers: { accept: "text/event-stream" },
      })
    ).text();
    expect(cmdSse).toMatch(/event: stdout[\s\S]*event: result\ndata: .*"exitCode":3/);
    expect((await server.request("DELETE", base, { token: ann })).status).toBe(204);
  });

  it("takes multipart uploads; refuses traversal, a 1 GB upload and keys without the sessions scope", async () => {
    const session = (await (
      await server.request("POST", "/v1/sessions", { token: ann, body: {} })
    ).json()) as { id: string };
    const base = `/v1/sessions/${session.id}`;
    const traversal = await server.request("GET", `${base}/files/..%2F..%2Fetc%2Fpasswd`, {
      token: ann,
    });
    expect(traversal.status).toBe(400);
    expect(
      await declaredUpload(server, "PUT", `${base}/files/big.bin`, ann, 1024 * 1024 * 1024),
    ).toBe(413);
    // A JSON body is a file like any other: stored as sent.
    const jsonBody = await server.request("PUT", `${base}/files/x.json`, {
      token: ann,
      body: { a: 1 },
    });
    expect(jsonBody.status).toBe(204);

    // Multipart upload to the same route: one file part, binary-safe, size-limited.
    const upload = (bytes: Buffer) => {
      const form = new FormData();
      form.append("file", new Blob([bytes]), "ignored-name.bin");
      return fetch(`${server.url}${base}/files/up/data.bin`, {
        method: "POST",
        headers: { authorization: `Bearer ${ann}` },
        body: form,
      });
    };
    const small = Buffer.from([0, 255, 1, 254, 10, 13]);
    expect((await upload(small)).status).toBe(204);
    const back = await server.request("GET", `${base}/files/up/data.bin`, { token: ann });
    expect(Buffer.from(await back.arrayBuffer())).toEqual(small);
    const tooBig = await upload(Buffer.alloc(5 * 1024 * 1024, 1));
    expect(tooBig.status).toBe(413);
    expect(await tooBig.text()).toMatch(/maxFileBytes/);
    const notForm = await server.request("POST", `${base}/files/x.bin`, {
      token: ann,
      raw: "abc",
      headers: { "content-type": "application/octet-stream" },
    });
    expect(notForm.status).toBe(415);

    const execOnly = await createKey(server, "exec-only", "execute", "carl");
    expect(
      (await server.request("POST", "/v1/sessions", { token: execOnly, body: {} })).status,
    ).toBe(403);
    // An admin can end anyone's session.
    expect(
      await (await server.request("DELETE", `/api/sandbox/sessions/${session.id}`)).json(),
    ).toEqual({ success: true });
    expect((await server.request("GET", base, { token: ann })).status).toBe(404);
  });
});
