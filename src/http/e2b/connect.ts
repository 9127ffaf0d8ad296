/**
 * A Connect RPC server for exactly what E2B's SDKs send: the JSON codec,
 * unary calls and server streams, over HTTP/1.1 POST, no compression
 * (docs/e2b.md). Hand-written rather than @connectrpc's router: that needs
 * protobuf descriptors we would have to build by hand, and its own body
 * parsing beside the Gate and the bounded JSON parser every other route uses.
 *
 * Unary: `application/json` in and out; an error is a non-200 status with
 * `{"code","message"}`. Stream: `application/connect+json`; the request is one
 * envelope (flags byte, 4-byte big-endian length, JSON), the answer is data
 * envelopes (flags 0) and one end-of-stream envelope (flags 2) carrying `{}` or
 * `{"error":{code,message}}`. A stream's errors always travel in that last
 * envelope under a 200: the client shows only "HTTP <n>" for any other status.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodType } from "zod";
import { WardenError, type ErrorCode } from "../../errors.js";
import { toWardenError } from "../errors.js";
import { END_STREAM, envelope, MAX_ENVELOPE_BYTES, readEnvelope } from "./envelope.js";
import {
  PlaneError,
  sandboxCall,
  type ConnectCode,
  type E2bDeps,
  type SandboxCall,
} from "./plane.js";
import { openStream } from "./stream.js";

export { envelope, MAX_ENVELOPE_BYTES, readEnvelope } from "./envelope.js";

/** How long past Connect-Timeout-Ms a handler may take to end on its own before it is cut off. */
export const DEADLINE_GRACE_MS = 2000;

export interface CallContext {
  /** Aborted when the client goes away, or when the call is cut off at its deadline. */
  signal: AbortSignal;
  /** Connect-Timeout-Ms of the request, if it sent one (0 or absent: none). */
  deadlineMs: number | null;
  request: FastifyRequest;
}

export interface Unary<I, O> {
  kind: "unary";
  input: ZodType<I>;
  handle(call: SandboxCall, req: I, ctx: CallContext): Promise<O>;
}

export interface ServerStream<I, O> {
  kind: "stream";
  input: ZodType<I>;
  /** Sent after `Keepalive-Ping-Interval` seconds without another message. */
  keepalive?: O;
  /** Resolving ends the stream with `{}`; throwing a PlaneError ends it with that error. */
  handle(
    call: SandboxCall,
    req: I,
    send: (msg: O) => Promise<void>,
    ctx: CallContext,
  ): Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Method = Unary<any, any> | ServerStream<any, any>;

/** HTTP status of a unary error, as Connect's spec maps the codes. */
export const HTTP_STATUS: Record<ConnectCode, number> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  unauthenticated: 401,
};

const FROM_WARDEN: Partial<Record<ErrorCode, ConnectCode>> = {
  INVALID_REQUEST: "invalid_argument",
  INVALID_CODE: "invalid_argument",
  UNSUPPORTED_LANGUAGE: "invalid_argument",
  NOT_FOUND: "not_found",
  UNAUTHORIZED: "unauthenticated",
  PERMISSION_DENIED: "permission_denied",
  MALICIOUS_CODE: "permission_denied",
  RATE_LIMIT: "resource_exhausted",
  QUOTA_EXCEEDED: "resource_exhausted",
  SANDBOX_BUSY: "resource_exhausted",
  SESSION_PAUSED: "unavailable",
  UPSTREAM_TIMEOUT: "deadline_exceeded",
};

/** What a paused sandbox answers on the sandbox plane (E2B has no resume call: connect is it). */
export const PAUSED_MESSAGE = "sandbox is paused; Sandbox.connect(id) resumes it";

/** Any error as the Connect code and message a client is shown (never a stack). */
export function toConnectError(error: unknown): { code: ConnectCode; message: string } {
  if (error instanceof PlaneError) return { code: error.connectCode, message: error.message };
  if (error instanceof WardenError) {
    if (error.code === "SESSION_PAUSED") return { code: "unavailable", message: PAUSED_MESSAGE };
    return { code: FROM_WARDEN[error.code] ?? "internal", message: error.message };
  }
  return { code: "internal", message: "internal error" };
}

function parseInput<I>(schema: ZodType<I>, value: unknown): I {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join(".") || "message";
  throw new PlaneError("invalid_argument", `${field}: ${issue?.message ?? "invalid"}`, 400);
}

function deadlineOf(request: FastifyRequest): number | null {
  const v = request.headers["connect-timeout-ms"];
  // Connect allows at most 10 digits; 0 means no deadline, as the SDK's timeoutMs: 0.
  return typeof v === "string" && /^\d{1,10}$/.test(v) && Number(v) > 0 ? Number(v) : null;
}

const STREAM_TYPE = "application/connect+json";

/** Headers a call must not carry: another protocol version, compressed bodies. */
function checkHeaders(req: FastifyRequest, kind: Method["kind"]): void {
  const version = req.headers["connect-protocol-version"];
  if (version !== undefined && version !== "1")
    throw new PlaneError("invalid_argument", "connect-protocol-version: only 1 is spoken", 400);
  const encoding = req.headers[kind === "unary" ? "content-encoding" : "connect-content-encoding"];
  if (encoding !== undefined && encoding !== "identity")
    throw new PlaneError("unimplemented", "compression is not supported: send identity", 501);
  const type = String(req.headers["content-type"] ?? "")
    .split(";")[0]!
    .trim();
  const want = kind === "unary" ? "application/json" : STREAM_TYPE;
  if (type !== want)
    throw new PlaneError("invalid_argument", `content-type: this method takes ${want}`, 415);
}

/**
 * Aborted when the client goes away before the answer is complete, or by
 * `cutOff` (the deadline). Handlers stop on it; nothing else is killed by it.
 */
function contextOf(request: FastifyRequest, reply: FastifyReply) {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  const ctx: CallContext = {
    signal: controller.signal,
    deadlineMs: deadlineOf(request),
    request,
  };
  return { ctx, cutOff: () => controller.abort() };
}

/** Settles with a deadline_exceeded PlaneError once the deadline and its grace have passed. */
function deadline(ms: number | null): { passed: Promise<never>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const passed = new Promise<never>((_, reject) => {
    if (ms !== null)
      timer = setTimeout(
        () => reject(new PlaneError("deadline_exceeded", `deadline of ${ms} ms passed`, 504)),
        ms + DEADLINE_GRACE_MS,
      );
  });
  passed.catch(() => undefined);
  return { passed, clear: () => clearTimeout(timer) };
}

function sendUnaryError(req: FastifyRequest, reply: FastifyReply, error: unknown) {
  const e = toConnectError(error);
  if (e.code === "internal") req.log.error({ err: error }, "e2b rpc failed");
  const status =
    error instanceof PlaneError && error.httpStatus === 415 ? 415 : HTTP_STATUS[e.code];
  return reply.status(status).type("application/json").send(JSON.stringify(e));
}

async function unary(
  m: Unary<unknown, unknown>,
  deps: E2bDeps,
  req: FastifyRequest,
  reply: FastifyReply,
) {
  const { ctx, cutOff } = contextOf(req, reply);
  const limit = deadline(ctx.deadlineMs);
  try {
    checkHeaders(req, "unary");
    const call = sandboxCall(req, deps);
    const input = parseInput(m.input, req.body ?? {});
    const out = await Promise.race([m.handle(call, input, ctx), limit.passed]);
    return reply
      .status(200)
      .type("application/json")
      .send(JSON.stringify(out ?? {}));
  } catch (error) {
    if (error instanceof PlaneError && error.connectCode === "deadline_exceeded") cutOff();
    return sendUnaryError(req, reply, error);
  } finally {
    limit.clear();
  }
}

async function stream(
  m: ServerStream<unknown, unknown>,
  deps: E2bDeps,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  let call: SandboxCall;
  let input: unknown;
  try {
    checkHeaders(req, "stream");
    call = sandboxCall(req, deps);
    input = parseInput(m.input, readEnvelope(req.body));
  } catch (error) {
    // A stream that cannot start is refused in the stream's own form, so the client sees why.
    if (error instanceof PlaneError && error.httpStatus === 415)
      return void sendUnaryError(req, reply, error);
    return void refuseStream(req, reply, error);
  }
  const { ctx, cutOff } = contextOf(req, reply);
  reply.hijack();
  const out = openStream(req, reply.raw, ctx.signal, m.keepalive);
  const limit = deadline(ctx.deadlineMs);
  let end: unknown = {};
  const handling = m.handle(call, input, out.send, ctx);
  handling.catch(() => undefined);
  try {
    await Promise.race([handling, limit.passed]);
  } catch (error) {
    const e = toConnectError(error);
    if (e.code === "internal") req.log.error({ err: error }, "e2b stream failed");
    if (e.code === "deadline_exceeded") cutOff();
    end = { error: e };
  } finally {
    limit.clear();
  }
  out.end(end);
}

function refuseStream(req: FastifyRequest, reply: FastifyReply, error: unknown) {
  const e = toConnectError(error);
  if (e.code === "internal") req.log.error({ err: error }, "e2b stream failed");
  return reply
    .status(200)
    .type(STREAM_TYPE)
    .send(envelope(END_STREAM, { error: e }));
}

/** Body-reading failures (too large, bad JSON, wrong type) in the Connect form of the method. */
function readFailure(kind: Method["kind"]) {
  return (error: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const w = toWardenError(error);
    const status = w.details?.httpStatus;
    const e =
      status === 415
        ? new PlaneError(
            "invalid_argument",
            `content-type: this method takes ${kind === "unary" ? "application/json" : STREAM_TYPE}`,
            415,
          )
        : status === 413
          ? new PlaneError(
              "invalid_argument",
              `request: larger than the limit of ${kind === "unary" ? req.routeOptions.bodyLimit : MAX_ENVELOPE_BYTES} bytes`,
              400,
            )
          : w;
    return kind === "stream" && status !== 415
      ? refuseStream(req, reply, e)
      : sendUnaryError(req, reply, e);
  };
}

/**
 * Serves `POST <prefix>/<service>/<Method>` for each method. Routes are public
 * to the Gate: each call is authorised by its sandbox token (sandboxCall).
 */
export function connectService(
  app: FastifyInstance,
  deps: E2bDeps,
  service: string,
  methods: Record<string, Method>,
): void {
  for (const [name, m] of Object.entries(methods))
    app.post(
      `/${service}/${name}`,
      {
        config: { scope: "public" },
        schema: { hide: true },
        errorHandler: readFailure(m.kind),
      },
      (req, reply) =>
        m.kind === "unary" ? unary(m, deps, req, reply) : stream(m, deps, req, reply),
    );
}

/** Registers the stream content type, read as raw bytes bounded to one envelope. */
export function acceptConnectStreams(app: FastifyInstance): void {
  app.addContentTypeParser(
    STREAM_TYPE,
    { parseAs: "buffer", bodyLimit: MAX_ENVELOPE_BYTES + 5 },
    (_req, body, done) => done(null, body),
  );
}
