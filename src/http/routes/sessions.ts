/** REST /v1/sessions: long-lived sandboxes and their files (commands and code: session-commands.ts). */
import { IsolationSchema } from "../../contract/isolation.js";
import { EnvironmentNameSchema } from "../../contract/environment.js";
import multipart from "@fastify/multipart";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { WardenError } from "../../errors.js";
import { RequestLimitsSchema } from "../../executions/limits.js";
import { NetworkRequestSchema } from "../../executions/request.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import type { SessionManager } from "../../sessions/manager.js";
import { SessionSchema } from "../../contract/session.js";
import { SnapshotIdSchema } from "../../contract/snapshot.js";
import { hasScope, type Actor } from "../auth.js";
import { ArtifactListSchema, artifactListing, sendArtifact } from "../artifacts.js";
import { emptyBodyIsNoBody } from "../empty-body.js";
import { ErrorResponses } from "../schemas.js";

const errors = ErrorResponses;

/** A file body past maxFileBytes: 413, naming the limit. */
function fileTooLarge(maxFileBytes: number): WardenError {
  return new WardenError(
    "INVALID_REQUEST",
    `body: at most ${maxFileBytes} bytes per file (maxFileBytes)`,
    { details: { httpStatus: 413 } },
  );
}

export const Params = z.object({
  id: z.string().regex(/^sess_[0-9A-Z]{26}$/, "id: not a session id"),
});
const FileParams = Params.extend({ "*": z.string().min(1, "path: empty").max(1024) });

/**
 * PUT a file: the body is the file, whatever its content type says (none,
 * text/plain, application/octet-stream, application/json...): raw bytes are
 * stored as given. Its own scope, so that the catch-all parser reaches no
 * other route. Bounded by maxFileBytes as the bytes arrive (and on a declared
 * length, before any is read).
 */
const rawUploadRoute: FastifyPluginAsyncZod<{
  sessions: SessionManager;
  maxFileBytes: number;
}> = async (app, { sessions, maxFileBytes }) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (request, body, done) => {
    // A form sent here would be stored with its envelope: send it to POST instead.
    if (/^multipart\//i.test(request.headers["content-type"] ?? ""))
      done(
        new WardenError(
          "INVALID_REQUEST",
          "content-type: PUT takes the file's raw bytes; POST the same route for multipart/form-data",
          { details: { httpStatus: 415 } },
        ),
      );
    else done(null, body);
  });
  app.setErrorHandler(async (error) => {
    if ((error as { code?: string }).code === "FST_ERR_CTP_BODY_TOO_LARGE")
      throw fileTooLarge(maxFileBytes);
    throw error; // the server's own handler answers
  });
  app.put(
    "/v1/sessions/:id/files/*",
    {
      config: { scope: "sessions" },
      bodyLimit: maxFileBytes,
      schema: {
        summary: "Upload a file: the raw request body (any content type but multipart)",
        params: FileParams,
      },
    },
    async (request, reply) => {
      const body = request.body;
      const content = Buffer.isBuffer(body) ? body : Buffer.alloc(0); // no body: an empty file
      await sessions.writeFile(...uploadTarget(request), content);
      return reply.status(204).send();
    },
  );
};

export const sessionRoutes: FastifyPluginAsyncZod<{
  sessions: SessionManager;
  service: ExecutionFrontend;
  maxFileBytes: number;
}> = async (app, { sessions, service, maxFileBytes }) => {
  // Multipart uploads: one file part, no other fields, at most maxFileBytes.
  await app.register(multipart, {
    limits: { fileSize: maxFileBytes, files: 1, fields: 0, parts: 1 },
    throwFileSizeLimit: true,
  });
  const me = (actor: Actor | null): { userId: string; admin: boolean } => ({
    userId: actor!.userId,
    admin: hasScope(actor, "admin"),
  });

  app.post(
    "/v1/sessions",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "Start a session: a sandbox that lives across calls",
        body: z
          .object({
            language: z
              .string()
              .max(32)
              .optional()
              .describe(
                "Default language of /run: python (default), javascript, typescript or bash.",
              ),
            network: NetworkRequestSchema.optional(),
            timeout: z.number().positive().optional().describe("Lifetime (TTL) in seconds."),
            idleTimeout: z
              .number()
              .positive()
              .optional()
              .describe("Destroyed after this many idle seconds."),
            limits: RequestLimitsSchema.optional().describe(
              "Limits of the whole session (one cgroup).",
            ),
            metadata: z.record(z.string().max(64), z.string().max(1024)).optional(),
            environment: EnvironmentNameSchema.optional(),
            snapshot: SnapshotIdSchema.optional().describe(
              "Start from one of your snapshots: its workspace is restored (code contexts start fresh).",
            ),
            isolation: IsolationSchema.optional().describe(
              "Isolation tier; absent: the key's, else the server's. A key forced to gvisor refuses namespaces (403 ISOLATION_FORBIDDEN).",
            ),
          })
          .strict(),
        response: { 201: SessionSchema, ...errors },
      },
    },
    async (request, reply) => {
      const actor = request.actor!;
      const network = service.resolveNetwork(request.body.network, actor.key?.networkAllow);
      const info = await sessions.create(
        actor.userId,
        { ...request.body, network, keyIsolation: actor.key },
        actor.key?.id ?? null,
      );
      return reply.status(201).send(info);
    },
  );

  app.get(
    "/v1/sessions",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "Your live sessions (admins: all)",
        response: { 200: z.array(SessionSchema), ...errors },
      },
    },
    async (request) => {
      const { userId, admin } = me(request.actor);
      return sessions.list(userId, admin);
    },
  );

  app.get(
    "/v1/sessions/:id",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "One session",
        params: Params,
        response: { 200: SessionSchema, ...errors },
      },
    },
    async (request) => {
      const { userId, admin } = me(request.actor);
      return sessions.get(request.params.id, userId, admin);
    },
  );

  app.post(
    "/v1/sessions/:id/extend",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "Extend a session's lifetime",
        description:
          "The session now ends `timeout` seconds from now, or later if it already would (extend never shortens). Its whole life, from creation, stays within the server's maxSessionTimeout; asking past it is refused. The sandbox lives as long as the session: nothing else ends it earlier.",
        params: Params,
        body: z
          .object({
            timeout: z.number().positive().describe("Seconds from now until the session ends."),
          })
          .strict(),
        response: { 200: SessionSchema, ...errors },
      },
    },
    async (request) =>
      sessions.extend(request.params.id, request.actor!.userId, request.body.timeout),
  );

  app.delete(
    "/v1/sessions/:id",
    {
      config: { scope: "sessions" },
      preParsing: emptyBodyIsNoBody,
      schema: { summary: "End a session and remove everything of it", params: Params },
    },
    async (request, reply) => {
      const { userId, admin } = me(request.actor);
      await sessions.destroy(request.params.id, userId, `deleted by ${userId}`, admin);
      return reply.status(204).send();
    },
  );

  app.get(
    "/v1/sessions/:id/artifacts",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "The artifacts a session's calls left (kept after the session ends)",
        params: Params,
        response: {
          200: ArtifactListSchema,
          ...errors,
        },
      },
    },
    async (request) => {
      const { userId, admin } = me(request.actor);
      return artifactListing(
        (await service.artifacts.list(request.params.id)).filter(
          (a) => admin || a.userId === userId,
        ),
      );
    },
  );

  app.get(
    "/v1/sessions/:id/artifacts/*",
    {
      config: { scope: "sessions" },
      schema: { summary: "Download an artifact of a session", params: FileParams },
    },
    async (request, reply) => {
      const { userId, admin } = me(request.actor);
      const artifact = await service.artifacts.open(
        request.params.id,
        request.params["*"],
        userId,
        admin,
      );
      return sendArtifact(reply, artifact);
    },
  );

  await app.register(rawUploadRoute, { sessions, maxFileBytes });

  app.post(
    "/v1/sessions/:id/files/*",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "Upload a file (multipart/form-data with one file part)",
        consumes: ["multipart/form-data"],
        params: FileParams,
      },
    },
    async (request, reply) => {
      if (!request.isMultipart())
        throw new WardenError(
          "INVALID_REQUEST",
          "body: send multipart/form-data with one file part (or PUT the raw bytes)",
          { details: { httpStatus: 415 } },
        );
      const part = await request.file();
      if (!part) throw new WardenError("INVALID_REQUEST", "body: no file part in the form");
      let content: Buffer;
      try {
        content = await part.toBuffer();
      } catch (error) {
        if ((error as { code?: string }).code === "FST_REQ_FILE_TOO_LARGE")
          throw fileTooLarge(maxFileBytes);
        throw error;
      }
      await sessions.writeFile(...uploadTarget(request), content);
      return reply.status(204).send();
    },
  );

  app.get(
    "/v1/sessions/:id/files/*",
    { config: { scope: "sessions" }, schema: { summary: "Download a file", params: FileParams } },
    async (request, reply) => {
      const content = await sessions.readFile(
        request.params.id,
        request.actor!.userId,
        request.params["*"],
      );
      return reply
        .type("application/octet-stream")
        .header("content-disposition", "attachment")
        .send(content);
    },
  );

  app.get(
    "/v1/sessions/:id/files",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "List a directory",
        params: Params,
        querystring: z.object({ dir: z.string().max(1024).default(".") }),
        response: {
          200: z.array(
            z.object({
              name: z.string(),
              type: z.string(),
              size: z.number(),
              mtime: z.string().nullable(),
            }),
          ),
          ...errors,
        },
      },
    },
    async (request) =>
      sessions.listFiles(request.params.id, request.actor!.userId, request.query.dir),
  );

  app.delete(
    "/v1/sessions/:id/files/*",
    {
      config: { scope: "sessions" },
      preParsing: emptyBodyIsNoBody,
      schema: { summary: "Delete a file or directory", params: FileParams },
    },
    async (request, reply) => {
      await sessions.deleteFile(request.params.id, request.actor!.userId, request.params["*"]);
      return reply.status(204).send();
    },
  );

  app.post(
    "/v1/sessions/:id/dirs/*",
    {
      config: { scope: "sessions" },
      preParsing: emptyBodyIsNoBody,
      schema: { summary: "Make a directory (and its parents)", params: FileParams },
    },
    async (request, reply) => {
      await sessions.makeDir(request.params.id, request.actor!.userId, request.params["*"]);
      return reply.status(204).send();
    },
  );
};

/** Where an upload goes, from either upload route: session, owner, path in the workspace. */
function uploadTarget(request: {
  params: { id: string; "*": string };
  actor: { userId: string } | null;
}): [string, string, string] {
  return [request.params.id, request.actor!.userId, request.params["*"]];
}
