/**
 * The published OpenAPI document, built in process (no sandbox, no root):
 * standard validators accept it, every operation has an id and a tag, and
 * the bodies the routes' zod schemas cannot give are described.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import { compileErrors, validate } from "@readme/openapi-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { loadConfig } from "../../src/config/load.js";
import { buildServer, type ServerDeps } from "../../src/http/server.js";

type Json = Record<string, unknown>;
interface Operation {
  operationId?: string;
  tags?: string[];
  requestBody?: { content: Record<string, { schema: Json }> };
  responses: Record<string, { content?: Record<string, Json> }>;
  security?: unknown[];
  parameters?: { name: string }[];
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

const dataDir = mkdtempSync(join(tmpdir(), "warden-openapi-"));
let app: Awaited<ReturnType<typeof buildServer>>;
let doc: Document;

/** Every operation of the document with its method and path. */
function operations(): { method: string; path: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ method, path, op })),
  );
}
const op = (method: string, path: string): Operation => {
  const found = doc.paths[path]?.[method];
  if (!found) throw new Error(`${method} ${path} is not in the document`);
  return found;
};

beforeAll(async () => {
  const config = loadConfig({ overrides: { dataDir } });
  // Building the routes touches only the config and the logger; the services
  // behind them are never called here, so none is opened (no root needed).
  app = await buildServer({ config, logger: silentLogger } as ServerDeps);
  const response = await app.inject({ method: "GET", url: "/openapi.json" });
  expect(response.statusCode).toBe(200); // public: no key
  doc = response.json<Document>();
});
afterAll(async () => {
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("the OpenAPI document", () => {
  it("validates with @apidevtools/swagger-parser", async () => {
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it("validates with @readme/openapi-parser", async () => {
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid ? "" : compileErrors(result)).toBe("");
  });

  it("gives every operation a unique operationId and a tag, with OpenAPI 3.0 methods only", () => {
    const ids = operations().map(({ op }) => op.operationId);
    expect(ids.every((id) => typeof id === "string" && /^[a-z][A-Za-z0-9]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { method, op } of operations()) {
      expect(["get", "put", "post", "delete", "options", "head", "patch"]).toContain(method);
      expect(op.tags?.length).toBeGreaterThan(0);
    }
    expect(Object.keys(doc.paths).filter((p) => p.includes("*"))).toEqual([]);
    expect(op("post", "/v1/executions").operationId).toBe("createExecution");
  });

  it("describes only routes the server has", () => {
    for (const { method, path } of operations()) {
      const url = path.replace(/\{path\}$/, "*").replace(/\{(\w+)\}/g, ":$1");
      expect(app.hasRoute({ method: method.toUpperCase(), url }), url).toBe(true);
    }
  });

  it("describes file bytes going up and down", () => {
    const put = op("put", "/v1/sessions/{id}/files/{path}");
    expect(put.requestBody?.content["application/octet-stream"]?.schema).toMatchObject({
      type: "string",
      format: "binary",
    });
    expect(put.responses["204"]).toBeDefined();
    const form = op("post", "/v1/sessions/{id}/files/{path}").requestBody?.content;
    expect(form?.["multipart/form-data"]?.schema).toMatchObject({ required: ["file"] });
    const get = op("get", "/v1/sessions/{id}/files/{path}");
    expect(Object.keys(get.responses["200"]?.content ?? {})).toEqual(["application/octet-stream"]);
    expect(get.parameters?.map((p) => p.name)).toEqual(["id", "path"]);
  });

  it("describes event streams with their event names", () => {
    const events = (method: string, path: string): unknown =>
      op(method, path).responses["200"]?.content?.["text/event-stream"]?.["x-events"];
    expect(events("get", "/v1/executions/{id}/events")).toEqual(
      expect.arrayContaining(["stdout", "stderr", "result"]),
    );
    expect(events("get", "/v1/sessions/{id}/commands/{commandId}/events")).toEqual([
      "stdout",
      "stderr",
      "result",
    ]);
    expect(events("post", "/v1/sessions/{id}/commands")).toContain("result");
    expect(events("post", "/v1/sessions/{id}/run")).toContain("result");
  });

  it("describes Piston's request and answer", () => {
    const execute = op("post", "/api/v2/execute");
    expect(execute.requestBody?.content["application/json"]?.schema).toMatchObject({
      required: expect.arrayContaining(["language", "files"]),
    });
    const answer = execute.responses["200"]?.content?.["application/json"] as { schema: Json };
    expect(answer.schema).toMatchObject({ required: expect.arrayContaining(["run"]) });
    expect(op("get", "/api/v2/runtimes").responses["200"]?.content).toBeDefined();
  });

  it("has /mcp and /metrics, and marks public routes as needing no key", () => {
    expect(op("post", "/mcp").requestBody?.content["application/json"]).toBeDefined();
    expect(op("get", "/metrics").responses["200"]?.content?.["text/plain"]).toBeDefined();
    expect(op("get", "/metrics").security).toEqual([]);
    expect(op("get", "/healthz").security).toEqual([]);
    expect(op("get", "/v1/runtimes").security).toBeUndefined(); // the document's default: bearer
  });

  it("describes previews by hand, since they forward any method and path", () => {
    const preview = doc.paths["/v1/sessions/{id}/ports/{port}/{path}"] ?? {};
    expect(Object.keys(preview)).toEqual(expect.arrayContaining(["get", "post", "put", "delete"]));
    expect(preview.get?.operationId).toBe("previewGet");
  });
});
