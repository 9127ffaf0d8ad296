/** GET /v1/executions: own executions only (admin: all), filters, pages. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let alice: string;
let bob: string;
const aliceIds: string[] = [];
let bobId: string;
let between: string;

interface Summary {
  id: string;
  userId: string;
  status: string;
  exitCode: number | null;
  createdAt: string;
  stdout?: string;
}
interface Page {
  executions: Summary[];
  nextCursor: string | null;
}

async function run(token: string, code: string): Promise<string> {
  const res = await server.request("POST", "/v1/executions", {
    token,
    body: { language: "bash", code },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: string }).id;
}

async function list(query: string, token?: string): Promise<Page> {
  const res = await server.request("GET", `/v1/executions${query}`, { token });
  expect(res.status).toBe(200);
  return (await res.json()) as Page;
}

beforeAll(async () => {
  server = await startServer();
  alice = await createKey(server, "alice-app", "execute", "alice");
  bob = await createKey(server, "bob-app", "execute", "bob");
  aliceIds.push(await run(alice, "echo one"));
  aliceIds.push(await run(alice, "exit 3"));
  await new Promise((r) => setTimeout(r, 20));
  between = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 20));
  aliceIds.push(await run(alice, "echo three"));
  bobId = await run(bob, "echo bob");
});
afterAll(async () => {
  await server?.stop();
});

describe("GET /v1/executions", () => {
  it("shows each key its own user's executions, newest first, without output", async () => {
    const mine = await list("", alice);
    expect(mine.executions.map((e) => e.id)).toEqual([...aliceIds].reverse());
    expect(mine.executions.every((e) => e.userId === "alice" && e.stdout === undefined)).toBe(true);
    expect(mine.nextCursor).toBeNull();
    const theirs = await list("", bob);
    expect(theirs.executions.map((e) => e.id)).toEqual([bobId]);
    // bob cannot ask for alice's.
    const peek = await server.request("GET", "/v1/executions?userId=alice", { token: bob });
    expect(peek.status).toBe(403);
  });

  it("shows an admin everyone's, or one user's", async () => {
    const all = await list("");
    expect(all.executions.map((e) => e.id).sort()).toEqual([...aliceIds, bobId].sort());
    const one = await list("?userId=bob");
    expect(one.executions.map((e) => e.id)).toEqual([bobId]);
  });

  it("filters by status and by creation time", async () => {
    const failed = await list("?status=failed", alice);
    expect(failed.executions).toMatchObject([{ id: aliceIds[1], status: "failed", exitCode: 3 }]);
    const both = await list("?status=failed,completed", alice);
    expect(both.executions).toHaveLength(3);
    const later = await list(`?from=${encodeURIComponent(between)}`, alice);
    expect(later.executions.map((e) => e.id)).toEqual([aliceIds[2]]);
    const earlier = await list(`?to=${encodeURIComponent(between)}`, alice);
    expect(earlier.executions.map((e) => e.id)).toEqual([aliceIds[1], aliceIds[0]]);
  });

  it("pages with a cursor", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await list(
        `?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
        alice,
      );
      expect(page.executions.length).toBeLessThanOrEqual(1);
      seen.push(...page.executions.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...aliceIds].reverse());
  });

  it("refuses bad queries, naming the field", async () => {
    for (const [query, field] of [
      ["?limit=101", "limit"],
      ["?limit=0", "limit"],
      ["?status=done", "status"],
      ["?from=yesterday", "from"],
      ["?cursor=bm90LWEtY3Vyc29y", "cursor"],
      ["?colour=red", ""],
    ] as const) {
      const res = await server.request("GET", `/v1/executions${query}`, { token: alice });
      expect(res.status, query).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("INVALID_REQUEST");
      expect(body.error.message).toContain(field);
    }
  });
});
