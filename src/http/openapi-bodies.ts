/**
 * The parts of the OpenAPI document that no route's zod schema can give:
 * raw bytes and multipart bodies, event streams, Piston's own shapes, and the
 * routes Fastify cannot describe (previews forward any method and any path;
 * `/mcp` and `/metrics` are not JSON routes). Used by ./openapi.ts only.
 */
import { z } from "zod";
import { ErrorBodySchema } from "./schemas.js";

/** A JSON object of the OpenAPI document; this module writes only plain JSON. */
export type Json = { [key: string]: unknown };

const toJson = (schema: z.ZodType): Json =>
  z.toJSONSchema(schema, { target: "openapi-3.0", io: "output", unrepresentable: "any" });

const ERROR_REF = { $ref: "#/components/schemas/ErrorBody" };
const error = (description: string): Json => ({
  description,
  content: { "application/json": { schema: ERROR_REF } },
});
/** Any error of a route that declares none, in the one error shape. */
export const ERROR_RESPONSE = error(
  "An error: the code, a message naming the field, the request id.",
);
const BYTES = { type: "string", format: "binary" };

/** Schemas added to `components.schemas`, referenced from the hand-written parts. */
export function componentSchemas(): Record<string, Json> {
  return { ErrorBody: toJson(ErrorBodySchema) };
}

/** 204: what the routes that only act answer. */
export const NO_CONTENT: Json = { description: "Done; no body." };

/** A file's bytes going up, as the raw body (PUT) or one multipart part (POST). */
export const RAW_UPLOAD: Json = {
  required: true,
  description: "The file's bytes, as they are: no encoding, no JSON.",
  content: { "application/octet-stream": { schema: BYTES } },
};
/** A multipart form whose one part, `file`, is the file. */
export const FILE_FORM: Json = {
  schema: {
    type: "object",
    required: ["file"],
    properties: { file: { ...BYTES, description: "The only part: the file." } },
  },
};
export const MULTIPART_UPLOAD: Json = {
  required: true,
  content: { "multipart/form-data": FILE_FORM },
};

/** A download: bytes, typed by `mediaType` (an artifact's own type: `*\/*`). */
export const download = (description: string, mediaType = "application/octet-stream"): Json => ({
  description: `${description} Sent as an attachment (Content-Disposition).`,
  content: { [mediaType]: { schema: BYTES } },
});

/**
 * An event stream. OpenAPI 3.0 has no schema for single events, so the
 * events are named in the description and listed in `x-events`.
 */
export const eventStream = (events: Record<string, string>): Json => ({
  schema: {
    type: "string",
    description: `Server-Sent Events, with a comment line every 15 s to keep the connection open. Events: ${Object.entries(
      events,
    )
      .map(([name, data]) => `\`${name}\` (${data})`)
      .join(", ")}.`,
  },
  "x-events": Object.keys(events),
});

export const EXECUTION_EVENTS = {
  status: "{status}",
  stdout: "{data}",
  stderr: "{data}",
  result: "the execution's result; the stream ends after it",
};
export const CALL_EVENTS = {
  stdout: "{data}",
  stderr: "{data}",
  result: "the same result the JSON answer carries; the stream ends after it",
  error: "{code, message, retryable} when the call failed; the stream ends after it",
};
export const BACKGROUND_EVENTS = {
  stdout: "{data}, from the command's start",
  stderr: "{data}, from the command's start",
  result: "the command once it has ended; the stream ends after it",
};

// Piston v2, as its clients send and read it (https://github.com/engineer-man/piston).
const PistonRequestSchema = z.object({
  language: z.string().describe("A language or one of its aliases."),
  version: z.string().optional().describe('Semver, a prefix ("3.11") or "*"; default "*".'),
  files: z
    .array(
      z.object({
        name: z.string().optional(),
        content: z.string(),
        encoding: z.enum(["utf8", "base64", "hex"]).optional(),
      }),
    )
    .min(1)
    .describe("The first file is the one run."),
  stdin: z.string().optional(),
  args: z.array(z.string()).optional(),
  run_timeout: z.number().optional().describe("Milliseconds; 0 or -1: the default."),
  compile_timeout: z.number().optional().describe("Milliseconds."),
  run_memory_limit: z.number().optional().describe("Bytes; -1: the default."),
  compile_memory_limit: z.number().optional().describe("Bytes."),
  run_cpu_time: z.number().optional().describe("Milliseconds."),
  compile_cpu_time: z.number().optional().describe("Milliseconds."),
});
const PistonStageSchema = z.object({
  stdout: z.string(),
  stderr: z.string(),
  output: z.string().describe("stdout and stderr interleaved as written."),
  code: z.number().int().nullable(),
  signal: z.string().nullable(),
  message: z.string().nullable(),
  status: z
    .enum(["RE", "SG", "TO", "OL", "EL", "XX"])
    .nullable()
    .describe("RE exit, SG signal, TO time, OL/EL output, XX internal; null when it succeeded."),
  cpu_time: z.number().nullable().describe("Milliseconds."),
  wall_time: z.number().nullable().describe("Milliseconds."),
  memory: z.number().nullable().describe("Bytes, at the peak."),
});
const PistonResultSchema = z.object({
  language: z.string(),
  version: z.string(),
  run: PistonStageSchema,
  compile: PistonStageSchema.optional(),
});
const PistonRuntimesSchema = z.array(
  z.object({ language: z.string(), version: z.string(), aliases: z.array(z.string()) }),
);
const pistonError = (description: string): Json => ({
  description,
  content: { "application/json": { schema: toJson(z.object({ message: z.string() })) } },
});

export const PISTON_RUNTIMES: Json = {
  200: {
    description: "Runtimes installed here.",
    content: { "application/json": { schema: toJson(PistonRuntimesSchema) } },
  },
  401: pistonError("No key, and anonymous Piston access is off."),
  429: pistonError("Rate limited."),
};
export const PISTON_EXECUTE = {
  requestBody: {
    required: true,
    description: "JSON; also accepted labelled text/plain, as piston-client sends it.",
    content: {
      "application/json": { schema: toJson(PistonRequestSchema) },
      "text/plain": { schema: toJson(PistonRequestSchema) },
    },
  },
  responses: {
    200: {
      description: "The run (and compile) stage.",
      content: { "application/json": { schema: toJson(PistonResultSchema) } },
    },
    400: pistonError("A field is missing or out of range, or the runtime is unknown."),
    401: pistonError("No key, and anonymous Piston access is off."),
    429: pistonError("Rate limited."),
    500: pistonError("Warden's own fault."),
    503: pistonError("No sandbox free within the queue timeout."),
  },
};

/** `/mcp`: MCP's streamable HTTP transport, stateless. */
export const MCP_PATH: Json = {
  post: {
    summary: "MCP over streamable HTTP (stateless: POST only)",
    description:
      "JSON-RPC 2.0 messages of the Model Context Protocol. Send `Accept: application/json, text/event-stream`. Host and Origin must name this server (DNS-rebinding protection). Tools check the key's scopes; see docs/mcp.md.",
    requestBody: {
      required: true,
      content: {
        "application/json": {
          schema: {
            description: "One JSON-RPC message or a batch.",
            oneOf: [
              { $ref: "#/components/schemas/JsonRpcMessage" },
              { type: "array", items: { $ref: "#/components/schemas/JsonRpcMessage" } },
            ],
          },
        },
      },
    },
    responses: {
      200: {
        description: "The JSON-RPC answer, as JSON or as an event stream.",
        content: {
          "application/json": { schema: { $ref: "#/components/schemas/JsonRpcMessage" } },
          "text/event-stream": { schema: { type: "string" } },
        },
      },
      202: { description: "Notifications only: accepted, nothing to answer." },
      401: error("No key, or an unknown one."),
      403: error("Host or Origin is not this server."),
      429: error("Rate limited."),
    },
  },
};
export const JSON_RPC_MESSAGE: Json = {
  type: "object",
  required: ["jsonrpc"],
  properties: {
    jsonrpc: { type: "string", enum: ["2.0"] },
    id: { oneOf: [{ type: "string" }, { type: "integer" }] },
    method: { type: "string" },
    params: { type: "object", additionalProperties: true },
    result: { type: "object", additionalProperties: true },
    error: { type: "object", additionalProperties: true },
  },
};

/** `/metrics`: Prometheus' text format, public like the health checks. */
export const METRICS_PATH: Json = {
  get: {
    summary: "Prometheus metrics",
    description: "The text exposition format; names are listed in docs/operations.md.",
    security: [],
    responses: {
      200: { description: "Metrics.", content: { "text/plain": { schema: { type: "string" } } } },
    },
  },
};

const SESSION_ID = {
  name: "id",
  in: "path",
  required: true,
  schema: { type: "string", pattern: "^sess_[0-9A-Z]{26}$" },
};
const PORT = {
  name: "port",
  in: "path",
  required: true,
  description: "A port a server listens on inside the session.",
  schema: { type: "integer", minimum: 1, maximum: 65_535 },
};
const PREVIEW_METHODS = ["get", "put", "post", "delete", "options", "head", "patch"] as const;

/**
 * Previews forward every method and every path to a server inside the session;
 * the routes (`app.all` with a wildcard) are hidden and described here instead.
 */
export function previewPaths(): Record<string, Json> {
  const operation = (method: string): Json => ({
    summary: `Web preview (${method.toUpperCase()}): a server listening on a port inside the session (owner only)`,
    description:
      "The request goes, without Warden's credentials or cookies, to the server inside; its answer comes back with a fixed set of headers dropped and a sandboxing Content-Security-Policy. WebSocket upgrades on the same URL are relayed too.",
    operationId: `preview${method[0]!.toUpperCase()}${method.slice(1)}`,
    parameters: [
      SESSION_ID,
      PORT,
      {
        name: "path",
        in: "path",
        required: true,
        description: "The rest of the URL, as the server inside sees it (may contain slashes).",
        schema: { type: "string" },
      },
    ],
    ...(method === "get" || method === "head" || method === "options"
      ? {}
      : { requestBody: { content: { "*/*": { schema: BYTES } } } }),
    responses: {
      default: {
        description: "Whatever the server inside answers.",
        content: { "*/*": { schema: BYTES } },
      },
      404: error("No such session, not yours, or nothing listens on the port."),
      502: error("The server inside closed the connection or answered something that is not HTTP."),
    },
  });
  return {
    "/v1/sessions/{id}/ports/{port}": {
      get: {
        summary: "Web preview: redirects to the same URL with a trailing slash",
        operationId: "previewRedirect",
        parameters: [SESSION_ID, PORT],
        responses: { 308: { description: "Go to `.../ports/{port}/`." } },
      },
    },
    "/v1/sessions/{id}/ports/{port}/{path}": Object.fromEntries(
      PREVIEW_METHODS.map((method) => [method, operation(method)]),
    ),
  };
}
