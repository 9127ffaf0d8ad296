/**
 * The published OpenAPI document (`GET /openapi.json`), in one place. Routes
 * give their zod schemas (fastify-type-provider-zod turns them into JSON
 * Schema); this module completes the result so that standard tools accept it
 * and a generated client reads well: an `operationId` and tags on every
 * operation, `{path}` for Fastify's `*` wildcards, the bodies zod cannot
 * describe (./openapi-bodies.ts), and nothing OpenAPI 3.0 does not know
 * (Fastify 5's `app.all` also registers the `QUERY` method).
 */
import type { FastifyDynamicSwaggerOptions, SwaggerTransform } from "@fastify/swagger";
import { jsonSchemaTransform } from "fastify-type-provider-zod";
import {
  BACKGROUND_EVENTS,
  CALL_EVENTS,
  ERROR_RESPONSE,
  EXECUTION_EVENTS,
  FILE_FORM,
  JSON_RPC_MESSAGE,
  MCP_PATH,
  METRICS_PATH,
  MULTIPART_UPLOAD,
  NO_CONTENT,
  PISTON_EXECUTE,
  PISTON_RUNTIMES,
  RAW_UPLOAD,
  componentSchemas,
  download,
  eventStream,
  previewPaths,
  type Json,
} from "./openapi-bodies.js";

/** What the table may add to or replace in a generated operation. */
interface Operation {
  id: string;
  requestBody?: Json;
  /** Replace these answers (a 2xx here also drops the generated placeholder 200). */
  responses?: Json;
  /** The 200 answer is also an event stream (with `Accept: text/event-stream`). */
  stream?: Json;
}

/**
 * Operation ids by method and path, chosen for the generated client; a route
 * missing here still gets a derived id (see `derivedId`), so new routes never
 * break the document.
 */
const OPERATIONS: Record<string, Operation> = {
  "GET /healthz": { id: "getHealth" },
  "GET /readyz": { id: "getReadiness" },
  "GET /v1/runtimes": { id: "listRuntimes" },
  "GET /v1/environments": { id: "listEnvironments" },
  "GET /v1/environments/{name}": { id: "getEnvironment" },
  "POST /v1/executions": { id: "createExecution" },
  "GET /v1/executions": { id: "listExecutions" },
  "GET /v1/executions/{id}": { id: "getExecution" },
  "POST /v1/executions/{id}/kill": { id: "killExecution" },
  "GET /v1/executions/{id}/events": {
    id: "streamExecution",
    responses: {
      200: {
        description: "The execution's events.",
        content: { "text/event-stream": eventStream(EXECUTION_EVENTS) },
      },
    },
  },
  "GET /v1/executions/{id}/artifacts": { id: "listExecutionArtifacts" },
  "GET /v1/executions/{id}/artifacts/{path}": {
    id: "getExecutionArtifact",
    responses: { 200: download("The artifact, with its own media type.", "*/*") },
  },
  "POST /v1/sessions": { id: "createSession" },
  "GET /v1/sessions": { id: "listSessions" },
  "GET /v1/sessions/{id}": { id: "getSession" },
  "DELETE /v1/sessions/{id}": { id: "endSession", responses: { 204: NO_CONTENT } },
  "POST /v1/sessions/{id}/extend": { id: "extendSession" },
  "GET /v1/sessions/{id}/artifacts": { id: "listSessionArtifacts" },
  "GET /v1/sessions/{id}/artifacts/{path}": {
    id: "getSessionArtifact",
    responses: { 200: download("The artifact, with its own media type.", "*/*") },
  },
  "GET /v1/sessions/{id}/files": { id: "listFiles" },
  "PUT /v1/sessions/{id}/files/{path}": {
    id: "writeFile",
    requestBody: RAW_UPLOAD,
    responses: { 204: NO_CONTENT },
  },
  "POST /v1/sessions/{id}/files/{path}": {
    id: "uploadFile",
    requestBody: MULTIPART_UPLOAD,
    responses: { 204: NO_CONTENT },
  },
  "GET /v1/sessions/{id}/files/{path}": {
    id: "readFile",
    responses: { 200: download("The file's bytes.") },
  },
  "DELETE /v1/sessions/{id}/files/{path}": { id: "deleteFile", responses: { 204: NO_CONTENT } },
  "POST /v1/sessions/{id}/dirs/{path}": { id: "makeDir", responses: { 204: NO_CONTENT } },
  "POST /v1/sessions/{id}/commands": { id: "runCommand", stream: eventStream(CALL_EVENTS) },
  "GET /v1/sessions/{id}/commands": { id: "listCommands" },
  "GET /v1/sessions/{id}/commands/{commandId}": { id: "getCommand" },
  "GET /v1/sessions/{id}/commands/{commandId}/events": {
    id: "streamCommand",
    responses: {
      200: {
        description: "The command's events.",
        content: { "text/event-stream": eventStream(BACKGROUND_EVENTS) },
      },
    },
  },
  "POST /v1/sessions/{id}/commands/{commandId}/stdin": {
    id: "writeCommandStdin",
    responses: { 204: NO_CONTENT },
  },
  "POST /v1/sessions/{id}/commands/{commandId}/kill": {
    id: "killCommand",
    responses: { 204: NO_CONTENT },
  },
  "POST /v1/sessions/{id}/run": { id: "runCode", stream: eventStream(CALL_EVENTS) },
  "POST /v1/sessions/{id}/pause": { id: "pauseSession" },
  "POST /v1/sessions/{id}/resume": { id: "resumeSession" },
  "POST /v1/sessions/{id}/snapshots": { id: "snapshotSession" },
  "GET /v1/snapshots": { id: "listSnapshots" },
  "GET /v1/snapshots/{id}": { id: "getSnapshot" },
  "DELETE /v1/snapshots/{id}": { id: "deleteSnapshot", responses: { 204: NO_CONTENT } },
  "GET /v1/sessions/{id}/watch": {
    id: "watchFiles",
    responses: {
      200: {
        description: "The directory's changes.",
        content: {
          "text/event-stream": eventStream({
            watching: "{path, recursive}, once the watch is set",
            change: "{kind, path, type}",
            end: "{reason} when the session ends; the stream ends after it",
          }),
        },
      },
    },
  },
  "POST /v1/notebooks": {
    id: "runNotebook",
    requestBody: {
      required: true,
      description:
        "The notebook as multipart field `file`, or JSON `{notebook}` / `{filename, content}`.",
      content: {
        "multipart/form-data": FILE_FORM,
        "application/json": { schema: { type: "object", additionalProperties: true } },
      },
    },
  },
  "GET /v1/notebooks/{id}": { id: "getNotebookRun" },
  "GET /v1/notebooks/{id}/notebook.ipynb": {
    id: "downloadNotebook",
    responses: {
      200: download("The executed notebook (nbformat 4.5).", "application/x-ipynb+json"),
    },
  },
  "POST /v1/analyze": { id: "analyzeCode" },
  "GET /api/sandbox/metrics": { id: "adminGetMetrics" },
  "GET /api/sandbox/metrics/{userId}": { id: "adminGetUserMetrics" },
  "GET /api/sandbox/logs/{executionId}": { id: "adminGetExecutionLogs" },
  "POST /api/sandbox/kill/{executionId}": { id: "adminKillExecution" },
  "GET /api/sandbox/sessions": { id: "adminListSessions" },
  "DELETE /api/sandbox/sessions/{id}": { id: "adminEndSession" },
  "POST /api/sandbox/keys": { id: "adminCreateKey" },
  "GET /api/sandbox/keys": { id: "adminListKeys" },
  "DELETE /api/sandbox/keys/{id}": { id: "adminRevokeKey" },
  "GET /api/v2/runtimes": { id: "pistonRuntimes", responses: PISTON_RUNTIMES },
  "POST /api/v2/execute": { id: "pistonExecute", ...PISTON_EXECUTE },
  "GET /metrics": { id: "getMetrics" },
  "POST /mcp": { id: "mcp" },
};

/** Tags by path prefix, most specific first; the first match names the group. */
const TAGS: [prefix: RegExp, tag: string, description: string][] = [
  [/^\/v1\/sessions\/\{id\}\/(files|dirs)\b/, "files", "Files inside a session"],
  [/^\/v1\/sessions\/\{id\}\/(commands|run)\b/, "commands", "Commands and code in a session"],
  [/^\/v1\/sessions\/\{id\}\/ports\b/, "previews", "Web previews of servers inside a session"],
  [/^\/v1\/(sessions|snapshots)\b/, "sessions", "Sessions: sandboxes that live across calls"],
  [/^\/v1\/(executions|runtimes)\b/, "executions", "Run code once"],
  [/^\/v1\/(notebooks|analyze)\b/, "notebooks", "Notebooks and static analysis"],
  [/^\/v1\/environments\b/, "environments", "Prebuilt package environments"],
  [/^\/api\/sandbox\//, "admin", "Monitoring and administration (admin keys)"],
  [/^\/api\/v2\//, "piston", "The Piston-compatible API"],
  [/^\/mcp$/, "mcp", "The MCP server over HTTP"],
  [/^/, "operations", "Health, readiness, metrics"],
];
const tagOf = (path: string): string => TAGS.find(([prefix]) => prefix.test(path))![1];

/** `get /v1/sessions/{id}/files` -> `getSessionsFiles`: unique, if not pretty. */
function derivedId(method: string, path: string): string {
  const words = path
    .split("/")
    .filter((part) => part && part !== "v1" && part !== "api" && !part.startsWith("{"))
    .flatMap((part) => part.split(/[^A-Za-z0-9]+/))
    .filter(Boolean);
  return [method, ...words.map((w) => w[0]!.toUpperCase() + w.slice(1))].join("");
}

const OPENAPI_METHODS = new Set([
  "get",
  "put",
  "post",
  "delete",
  "options",
  "head",
  "patch",
  "trace",
]);
const PATH_FIELDS = new Set(["summary", "description", "parameters", "servers"]);
/** Hidden and described by hand: routes whose shape a generator cannot express. */
const HAND_WRITTEN = /^\/v1\/sessions\/:id\/ports\/|^\/mcp$|^\/metrics$/;

/** Per route, before the document is assembled: zod to JSON Schema, then Warden's rules. */
const transform: SwaggerTransform = (input) => {
  const { schema, url } = jsonSchemaTransform(input) as { schema: Json; url: string };
  if (HAND_WRITTEN.test(input.url)) return { schema: { hide: true }, url };
  // Fastify's `*` becomes a named parameter: `{*}` is not a usable name in clients.
  const wildcard = url.endsWith("/*");
  const params = schema.params as { properties?: Json; required?: string[] } | undefined;
  if (wildcard && params?.properties && "*" in params.properties) {
    const { "*": rest, ...others } = params.properties;
    schema.params = {
      ...params,
      properties: { ...others, path: { ...(rest as Json), description: "May contain slashes." } },
      required: [...(params.required ?? []).filter((name) => name !== "*"), "path"],
    };
  }
  const scope = input.route.config?.scope;
  // Public routes need no key; Piston's may be called without one when the server allows it.
  if (scope === "public") schema.security = [];
  else if (input.route.config?.anonymous) schema.security = [{ bearer: [] }, {}];
  return { schema, url: wildcard ? `${url.slice(0, -1)}:path` : url };
};

/** Once the document is assembled: the hand-written paths, then ids, tags and bodies everywhere. */
function complete(document: Json): Json {
  const paths = { ...(document.paths as Record<string, Json>), ...previewPaths() };
  paths["/mcp"] = MCP_PATH;
  paths["/metrics"] = METRICS_PATH;
  const used = new Set<string>();
  for (const [path, item] of Object.entries(paths)) {
    const completed: Json = {};
    for (const [method, value] of Object.entries(item)) {
      if (PATH_FIELDS.has(method)) completed[method] = value;
      if (!OPENAPI_METHODS.has(method)) continue; // e.g. `query`, which OpenAPI 3.0 rejects
      const entry = OPERATIONS[`${method.toUpperCase()} ${path}`];
      const generated = value as Json;
      const op: Json = { ...generated, tags: generated.tags ?? [tagOf(path)] };
      op.operationId = generated.operationId ?? entry?.id ?? derivedId(method, path);
      // One route answering several methods shares one generated object: ids must differ.
      if (used.has(op.operationId as string)) op.operationId = derivedId(method, path);
      used.add(op.operationId as string);
      if (entry?.requestBody) op.requestBody = entry.requestBody;
      let responses = { ...(generated.responses as Json) };
      if (entry?.responses) {
        const placeholder = (responses["200"] as Json | undefined)?.content === undefined;
        if (placeholder && Object.keys(entry.responses).some((s) => s.startsWith("2")))
          delete responses["200"];
        responses = { ...responses, ...entry.responses };
      }
      const ok = responses["200"] as Json | undefined;
      if (entry?.stream && ok)
        responses["200"] = {
          ...ok,
          content: { ...(ok.content as Json), "text/event-stream": entry.stream },
        };
      // Routes without declared errors still answer them, in the one error shape.
      if (!Object.keys(responses).some((s) => s === "default" || Number(s) >= 400))
        responses.default = ERROR_RESPONSE;
      op.responses = responses;
      completed[method] = op;
    }
    paths[path] = completed;
  }
  const components = document.components as Json;
  return {
    ...document,
    tags: TAGS.map(([, name, description]) => ({ name, description })),
    paths,
    components: {
      ...components,
      schemas: {
        ...(components.schemas as Json),
        ...componentSchemas(),
        JsonRpcMessage: JSON_RPC_MESSAGE,
      },
    },
  };
}

/** The @fastify/swagger options: server.ts registers the plugin with these. */
export function openapiOptions(version: string): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      info: {
        title: "Warden",
        description:
          "Run untrusted code behind real kernel isolation. Errors have one shape (ErrorBody); the codes are listed in docs/rest.md (#errors).",
        version,
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
    transform,
    transformObject: (input) =>
      complete("openapiObject" in input ? input.openapiObject : input.swaggerObject),
  };
}
