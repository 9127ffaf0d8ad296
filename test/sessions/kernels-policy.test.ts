/**
 * bash and TypeScript cells cannot be analysed, so a block-mode key must not
 * use them to run what the policy would refuse: they are refused as raw
 * commands are (PERMISSION_DENIED, audited) and nothing runs. An audit-mode
 * key runs them. Real `warden serve`, real keys.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let blockKey: string;
let auditKey: string;

beforeAll(async () => {
  server = await startServer({ config: { maxSessionsPerUser: 4 } });
  blockKey = await createKey(server, "kb-block", "execute,sessions", "kb", undefined, "block");
  auditKey = await createKey(server, "ka-audit", "execute,sessions", "ka", undefined, "audit");
});
afterAll(async () => {
  await server?.stop();
});

async function newSession(token: string, language?: string): Promise<string> {
  const res = await server.request("POST", "/v1/sessions", { token, body: { language } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const CELLS = {
  bash: "echo ran > /workspace/pwned.txt; id",
  typescript: "require('node:fs').writeFileSync('/workspace/pwned.txt', 'ran' as string)",
};

describe("cells the policy cannot analyse", () => {
  it.each(["bash", "typescript"] as const)(
    "a block-mode key's %s cell is refused; nothing runs",
    async (language) => {
      const session = await newSession(blockKey);
      const before = server.count("events", `user_id = 'kb' AND event = 'rejected'`);
      const res = await server.request("POST", `/v1/sessions/${session}/run`, {
        token: blockKey,
        body: { code: CELLS[language], language },
      });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        "PERMISSION_DENIED",
      );
      expect(server.count("events", `user_id = 'kb' AND event = 'rejected'`)).toBe(before + 1);
      const file = await server.request("GET", `/v1/sessions/${session}/files/pwned.txt`, {
        token: blockKey,
      });
      expect(file.status).toBe(404);
    },
  );

  it("an audit-mode key runs them", async () => {
    const session = await newSession(auditKey, "bash");
    const res = await server.request("POST", `/v1/sessions/${session}/run`, {
      token: auditKey,
      body: { code: "cd /tmp; echo $PWD" },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "completed", stdout: "/tmp\n" });
  });
});
