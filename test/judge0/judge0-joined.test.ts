/**
 * Where the Judge0 adapter meets the other parts of issue 15, through a real
 * `warden serve`: `number_of_runs` runs through the judging engine (compiled
 * once, N cases), and `callback_url` is delivered by the webhook service in
 * Judge0's own shape (a PUT of the submission) to a receiver on loopback,
 * signed like every delivery.
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, eventually, startServer, type TestServer } from "../helpers/server.js";
import { startReceiver, type Receiver } from "../webhooks/receiver.js";

let server: TestServer;
let receiver: Receiver;
let key: string;

interface Submission {
  token: string;
  status: { id: number; description: string };
  stdout: string | null;
  time: string | null;
}

async function j0(method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}/judge0${path}`, {
    method,
    headers: {
      "x-auth-token": key,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Submission };
}

const HELLO_C = '#include <stdio.h>\nint main(void) { printf("hello\\n"); return 0; }';

beforeAll(async () => {
  receiver = await startReceiver();
  server = await startServer({
    config: { webhooks: { allowHosts: ["127.0.0.1"], pollMs: 100, timeoutMs: 3000 } },
  });
  key = await createKey(server, "judge0-joined", "execute", "carol");
}, 60_000);
afterAll(async () => {
  await server?.stop();
  await receiver?.close();
});

describe("Judge0 over the judging engine and the webhooks", () => {
  it("number_of_runs compiles once and runs the program that many times", async () => {
    const r = await j0("POST", "/submissions?wait=true", {
      source_code: HELLO_C,
      language_id: 50,
      expected_output: "hello",
      number_of_runs: 3,
    });
    expect(r.status).toBe(201);
    expect(r.body.status).toEqual({ id: 3, description: "Accepted" });
    expect(r.body.stdout).toBe("hello\n");
    // The execution behind the token is a test-case run of three cases, compiled once.
    const logs = await server.request("GET", `/api/sandbox/logs/${r.body.token}`, {
      token: server.adminToken,
    });
    const events = (await logs.json()) as { event: string; data?: { cases?: number } }[];
    const compiled = events.filter((e) => e.event === "compiled");
    expect(compiled).toHaveLength(1);
    expect(compiled[0]!.data?.cases).toBe(3);
  }, 90_000);

  it("number_of_runs with a wrong answer is Wrong Answer", async () => {
    const r = await j0("POST", "/submissions?wait=true", {
      source_code: HELLO_C,
      language_id: 50,
      expected_output: "goodbye",
      number_of_runs: 2,
    });
    expect(r.status).toBe(201);
    expect(r.body.status).toEqual({ id: 4, description: "Wrong Answer" });
  }, 90_000);

  it("callback_url gets Judge0's submission as a signed PUT", async () => {
    const r = await j0("POST", "/submissions", {
      source_code: "print(input().upper())",
      language_id: 71,
      stdin: "judge",
      callback_url: `${receiver.url}/judge0-cb`,
    });
    expect(r.status).toBe(201);
    const token = r.body.token;
    await eventually(async () => receiver.received.some((x) => x.path === "/judge0-cb"), 60_000);
    const got = receiver.received.find((x) => x.path === "/judge0-cb")!;
    expect(got.method).toBe("PUT");
    // Judge0 sends its callbacks base64-encoded, whatever the submission asked.
    const body = JSON.parse(got.body) as Submission;
    expect(body.token).toBe(token);
    expect(Buffer.from(body.stdout!, "base64").toString()).toBe("JUDGE\n");
    expect(body.status).toEqual({ id: 3, description: "Accepted" });
    // Signed with the key's secret, as docs/webhooks.md says.
    const secretRes = await server.request("GET", "/v1/webhooks/secret", { token: key });
    const { secret } = (await secretRes.json()) as { secret: string };
    const parts = Object.fromEntries(
      String(got.headers["warden-signature"])
        .split(",")
        .map((kv) => kv.split("=")),
    ) as { t: string; v1: string };
    const expected = createHmac("sha256", secret).update(`${parts.t}.${got.body}`).digest("hex");
    expect(parts.v1).toBe(expected);
  }, 90_000);

  it("refuses a callback_url to a private address at submission, running nothing", async () => {
    const r = await fetch(`${server.url}/judge0/submissions`, {
      method: "POST",
      headers: { "x-auth-token": key, "content-type": "application/json" },
      body: JSON.stringify({
        source_code: "print(1)",
        language_id: 71,
        callback_url: "http://169.254.169.254/latest/meta-data",
      }),
    });
    expect(r.status).toBe(422);
    expect(JSON.stringify(await r.json())).toMatch(/callback_url/);
  }, 30_000);
});
