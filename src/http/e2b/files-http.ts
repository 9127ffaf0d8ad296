/**
 * envd's `/files`: GET a file's raw bytes, POST files as a multipart form (one
 * part per file, the part's filename its path when no `?path=`) or as the
 * raw `application/octet-stream` body. Through the session manager's
 * readFile/writeFile, paths mapped from `/home/user/...`. Every upload is
 * counted as its bytes arrive and cut off at maxFileBytes per file, before
 * any of it reaches the sandbox; errors are envd's `{"code","message"}`.
 */
import multipart from "@fastify/multipart";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { posix } from "node:path";
import { WardenError } from "../../errors.js";
import { checkUser, statInside } from "./filesystem.js";
import {
  PlaneError,
  sandboxCall,
  toE2bPath,
  toWorkspacePath,
  type E2bDeps,
  type SandboxCall,
} from "./plane.js";

/** Files in one multipart upload (SDK writeFiles sends one part each). */
export const MAX_UPLOAD_FILES = 1000;

interface FilesQuery {
  path?: string;
  username?: string;
}

/** One uploaded file as envd answers it. */
interface WrittenFile {
  name: string;
  type: "file";
  path: string;
}

const fail = (status: number, message: string): PlaneError =>
  new PlaneError(status === 404 ? "not_found" : "invalid_argument", message, status);

function queryOf(request: FastifyRequest): FilesQuery {
  const q = (request.query ?? {}) as Record<string, unknown>;
  const one = (v: unknown, name: string): string | undefined => {
    if (v === undefined || typeof v === "string") return v;
    throw fail(400, `${name}: one value`);
  };
  return { path: one(q.path, "path"), username: one(q.username, "username") };
}

/** E2B's `username` query: absent or `user` (Warden runs everything as the session's user). */
function checkUsername(username: string | undefined): void {
  if (username !== undefined && username !== "user")
    checkUser(`Basic ${Buffer.from(`${username}:`).toString("base64")}`);
}

/** The error as envd's JSON body, in the status the SDK maps to its own error types. */
function toHttp(error: unknown, maxFileBytes: number): { status: number; message: string } {
  const code = (error as { code?: string }).code;
  if (error instanceof PlaneError) return { status: error.httpStatus, message: error.message };
  const limit = `at most ${maxFileBytes} bytes per file (maxFileBytes)`;
  if (code === "FST_ERR_CTP_BODY_TOO_LARGE" || code === "FST_REQ_FILE_TOO_LARGE")
    return { status: 400, message: `file: ${limit}` };
  if (code === "FST_FILES_LIMIT" || code === "FST_PARTS_LIMIT")
    return { status: 400, message: `form: at most ${MAX_UPLOAD_FILES} files per upload` };
  if (code === "FST_FIELDS_LIMIT")
    return { status: 400, message: "form: file parts only (no other fields)" };
  if (code === "FST_INVALID_MULTIPART_CONTENT_TYPE" || code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
    return {
      status: 400,
      message: "Content-Type: multipart/form-data or application/octet-stream",
    };
  if (error instanceof WardenError) {
    if (/enospc/i.test(error.message))
      return { status: 507, message: "the workspace is full (the session's diskMb)" };
    if (error.code === "QUOTA_EXCEEDED" && /more than/.test(error.message))
      return { status: 400, message: `${error.message}: Warden reads ${limit}` };
    if (error.code === "SESSION_PAUSED")
      return { status: 503, message: "sandbox is paused; Sandbox.connect(id) resumes it" };
    const status = error.code === "NOT_FOUND" ? 404 : error.httpStatus < 500 ? 400 : 500;
    return { status, message: status === 500 ? "internal error" : error.message };
  }
  // A multipart body cut short or malformed is the client's error.
  if (error instanceof Error && /multipart|boundary|Unexpected end of form/i.test(error.message))
    return { status: 400, message: "body: not a valid multipart/form-data body" };
  return { status: 500, message: "internal error" };
}

function send(reply: FastifyReply, error: unknown, maxFileBytes: number): FastifyReply {
  const { status, message } = toHttp(error, maxFileBytes);
  if (status === 500) reply.log.error({ err: error }, "e2b /files failed");
  // An upload refused part-way is not read on: the connection closes after this answer.
  if (status === 400 && !reply.request.raw.complete) void reply.header("connection", "close");
  return reply.status(status).type("application/json").send({ code: status, message });
}

/** Where an uploaded file goes, checked to stay in the workspace. */
async function target(deps: E2bDeps, call: SandboxCall, path: string | undefined) {
  if (!path) throw fail(400, "path: give ?path= or a filename for each file part");
  const rel = toWorkspacePath(path);
  const s = await statInside(deps, call, rel);
  if (rel === "." || s.entry?.type === "directory")
    throw fail(400, `path ${toE2bPath(rel)}: is a directory`);
  return rel;
}

async function written(deps: E2bDeps, call: SandboxCall, rel: string, content: Buffer) {
  await deps.sessions.writeFile(call.sessionId, call.userId, rel, content);
  const path = toE2bPath(rel);
  return { name: posix.basename(path), type: "file", path } satisfies WrittenFile;
}

export async function filesRoutes(app: FastifyInstance, deps: E2bDeps): Promise<void> {
  const max = deps.config.maxFileBytes;
  await app.register(async (scope) => {
    await scope.register(multipart, {
      // busboy stops keeping a part's bytes at fileSize: memory holds one file at most.
      limits: { fileSize: max, files: MAX_UPLOAD_FILES, parts: MAX_UPLOAD_FILES, fields: 0 },
      throwFileSizeLimit: true,
    });
    // Raw uploads: bounded by a declared length before reading, and by the count as they arrive.
    scope.addContentTypeParser(
      "application/octet-stream",
      { parseAs: "buffer", bodyLimit: max },
      (_request, body, done) => done(null, body),
    );
    const calls = new WeakMap<FastifyRequest, SandboxCall>();
    // Before any byte of the body is read: who is asking, and in what encoding.
    scope.addHook("preParsing", async (request, _reply, payload) => {
      calls.set(request, sandboxCall(request, deps));
      checkUsername(queryOf(request).username);
      const encoding = request.headers["content-encoding"];
      if (encoding && encoding !== "identity")
        throw fail(
          400,
          `Content-Encoding ${String(encoding).slice(0, 32)} is not supported by Warden's E2B adapter: upload uncompressed (no gzip)`,
        );
      if (Object.keys(request.headers).some((h) => h.startsWith("x-metadata-")))
        throw fail(400, "file metadata (X-Metadata-*) is not supported by Warden's E2B adapter");
      return payload;
    });
    scope.setErrorHandler((error, _request, reply) => send(reply, error, max));
    const route = { config: { scope: "public" as const }, schema: { hide: true } };

    scope.get("/files", route, async (request, reply) => {
      const call = calls.get(request)!;
      const { path } = queryOf(request);
      if (!path) throw fail(400, "path: required");
      const rel = toWorkspacePath(path);
      const s = await statInside(deps, call, rel);
      const shown = toE2bPath(rel);
      if (!s.entry) throw fail(404, `file ${shown} not found`);
      if (s.real === null) throw fail(400, `path ${shown}: leads out of /home/user through a link`);
      if (s.entry.type === "directory") throw fail(400, `path ${shown}: is a directory`);
      const content = await deps.sessions.readFile(call.sessionId, call.userId, s.real);
      return reply
        .type("application/octet-stream")
        .header("content-length", content.length)
        .send(content);
    });

    scope.post("/files", route, async (request, reply) => {
      const call = calls.get(request)!;
      const { path } = queryOf(request);
      if (!request.isMultipart()) {
        if (!Buffer.isBuffer(request.body) && request.body !== undefined)
          throw fail(400, "Content-Type: multipart/form-data or application/octet-stream");
        const rel = await target(deps, call, path);
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        return reply.send([await written(deps, call, rel, body)]);
      }
      const files: WrittenFile[] = [];
      for await (const part of request.parts()) {
        if (part.type !== "file") throw fail(400, "form: file parts only (no other fields)");
        if (path !== undefined && files.length > 0)
          throw fail(400, "form: one file part with ?path= (several: a filename each, no path)");
        const rel = await target(deps, call, path ?? part.filename);
        // Counted as it arrives: past maxFileBytes this throws and nothing is written.
        const content = await part.toBuffer();
        files.push(await written(deps, call, rel, content));
      }
      if (files.length === 0) throw fail(400, "form: no file part");
      return reply.send(files);
    });
  });
}
