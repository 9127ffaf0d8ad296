/**
 * A client generated from the published OpenAPI document (openapi-typescript
 * types, openapi-fetch calls) runs the main flows against a real `warden
 * serve`, with no casts: `npm run lint` typechecks this file against types
 * that scripts/openapi-types.mjs generates from the built server
 * (test/generated/, not committed). The same document is fetched here and
 * must equal what the types were made from, so the check is not stale.
 */
import createClient from "openapi-fetch";
import openapiTS, { astToString } from "openapi-typescript";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { paths } from "../generated/warden-api.js";
import { createKey, startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
let client: ReturnType<typeof createClient<paths>>;

beforeAll(async () => {
  server = await startServer();
  const token = await createKey(server, "typed-client", "execute,sessions", "typed");
  client = createClient<paths>({
    baseUrl: server.url,
    headers: { authorization: `Bearer ${token}` },
  });
});
afterAll(async () => {
  await server?.stop();
});

describe("a typed client generated from /openapi.json", () => {
  it("was generated from the document this server publishes", async () => {
    const response = await fetch(`${server.url}/openapi.json`);
    const types = astToString(await openapiTS(await response.text()));
    const generated = join(import.meta.dirname, "..", "generated", "warden-api.d.ts");
    if (!existsSync(generated)) throw new Error("no generated types: run `npm run types:api`");
    // The generated file starts with one comment line of its own.
    expect(readFileSync(generated, "utf8").split("\n").slice(1).join("\n")).toBe(types);
  });

  it("lists runtimes, runs code and reads the execution back", async () => {
    const runtimes = await client.GET("/v1/runtimes");
    expect(runtimes.data?.map((r) => r.language)).toContain("python");

    const created = await client.POST("/v1/executions", {
      body: { language: "python", code: "print(6 * 7)" },
    });
    expect(created.response.status).toBe(200);
    const id = created.data?.id ?? "";
    expect(created.data).toMatchObject({ status: "completed", stdout: "42\n", exitCode: 0 });

    const got = await client.GET("/v1/executions/{id}", { params: { path: { id } } });
    expect(got.data).toMatchObject({
      id,
      status: "completed",
      userId: "typed",
      language: "python",
    });

    const missing = await client.GET("/v1/executions/{id}", {
      params: { path: { id: "exec_00000000000000000000000000" } },
    });
    expect(missing.error?.error.code).toBe("NOT_FOUND");
  });

  it("starts a session, moves a file, runs a command in it and ends it", async () => {
    const created = await client.POST("/v1/sessions", { body: { timeout: 120 } });
    expect(created.response.status).toBe(201);
    const id = created.data?.id ?? "";
    const session = { params: { path: { id } } };

    const put = await client.PUT("/v1/sessions/{id}/files/{path}", {
      params: { path: { id, path: "notes/hello.txt" } },
      body: "hello from a typed client\n",
      bodySerializer: (body) => body,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(put.response.status).toBe(204);
    const read = await client.GET("/v1/sessions/{id}/files/{path}", {
      params: { path: { id, path: "notes/hello.txt" } },
      parseAs: "text",
    });
    expect(read.data).toBe("hello from a typed client\n");

    const command = await client.POST("/v1/sessions/{id}/commands", {
      ...session,
      body: { command: "cat notes/hello.txt && echo done" },
    });
    expect(command.response.status).toBe(200);
    expect(command.data).toMatchObject({
      exitCode: 0,
      stdout: "hello from a typed client\ndone\n",
    });

    const listed = await client.GET("/v1/sessions", {});
    expect(listed.data?.map((s) => s.id)).toContain(id);

    const ended = await client.DELETE("/v1/sessions/{id}", session);
    expect(ended.response.status).toBe(204);
    const gone = await client.GET("/v1/sessions/{id}", session);
    expect(gone.response.status).toBe(404);
  });
});
