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
 * `{"error":{code,message}}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodType } from "zod";
import { WardenError, type ErrorCode } from "../../errors.js";
import {
  PlaneError,
  sandboxCall,
  type ConnectCode,
  type E2bDeps,
  type SandboxCall,
} from "./plane.js";

/** Largest request envelope: every E2B request message is small (stdin chunks are 64 KiB). */
export const MAX_ENVELOPE_BYTES = 1024 * 1024;
const END_STREAM = 0x02;
const COMPRESSED = 0x01;
/** Unsent bytes a stream may hold for a slow client before send() waits for it. */
const HIGH_WATER = 1024 * 1024;
/** A client that takes nothing for this long is dropped. */
const STALL_MS = 30_000;

export interface CallContext {
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  /** Connect-Timeout-Ms of the request, if it sent one. */
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

const HTTP_STATUS: Record<ConnectCode, number> = {
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

/** Any error as the Connect code and message a client is shown (never a stack). */
export function toConnectError(error: unknown): { code: ConnectCode; message: string } {
  if (error instanceof PlaneError) return { code: error.connectCode, message: error.message };
  if (error instanceof WardenError)
    return { code: FROM_WARDEN[error.code] ?? "internal", message: error.message };
  return { code: "internal", message: "internal error" };
}

/** Splits one request envelope; throws invalid_argument on anything else. */
export function readEnvelope(body: Buffer): unknown {
  if (body.length < 5) throw new PlaneError("invalid_argument", "stream request: no envelope", 400);
  const flags = body[0]!;
  const length = body.readUInt32BE(1);
  if (flags & COMPRESSED)
    throw new PlaneError("invalid_argument", "stream request: compression is not supported", 400);
  if (length > MAX_ENVELOPE_BYTES || body.length !== 5 + length)
    throw new PlaneError(
      "invalid_argument",
      `stream request: one envelope of at most ${MAX_ENVELOPE_BYTES} bytes`,
      400,
    );
  return parseJson(body.subarray(5).toString("utf8"));
}

/** One response envelope. */
export function envelope(flags: number, message: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(json.length, 1);
  return Buffer.concat([head, json]);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new PlaneError("invalid_argument", "request message is not valid JSON", 400);
  }
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
  return typeof v === "string" && /^\d{1,10}$/.test(v) ? Number(v) : null;
}

function keepaliveSeconds(request: FastifyRequest): number | null {
  const v = request.headers["keepalive-ping-interval"];
  return typeof v === "string" && /^\d{1,5}$/.test(v) && Number(v) > 0 ? Number(v) : null;
}

function contextOf(request: FastifyRequest, reply: FastifyReply): CallContext {
  const gone = new AbortController();
  reply.raw.on("close", () => gone.abort());
  return { signal: gone.signal, deadlineMs: deadlineOf(request), request };
}

async function unary(
  m: Unary<unknown, unknown>,
  deps: E2bDeps,
  req: FastifyRequest,
  reply: FastifyReply,
) {
  try {
    const call = sandboxCall(req, deps);
    const input = parseInput(m.input, req.body ?? {});
    const out = await m.handle(call, input, contextOf(req, reply));
    return reply
      .status(200)
      .type("application/json")
      .send(JSON.stringify(out ?? {}));
  } catch (error) {
    const e = toConnectError(error);
    if (e.code === "internal") req.log.error({ err: error }, "e2b rpc failed");
    return reply.status(HTTP_STATUS[e.code]).type("application/json").send(JSON.stringify(e));
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
    call = sandboxCall(req, deps);
    input = parseInput(m.input, readEnvelope(req.body as Buffer));
  } catch (error) {
    const e = toConnectError(error);
    // Before the stream starts, an error is an ordinary status with the JSON body.
    return void reply.status(HTTP_STATUS[e.code]).type("application/json").send(JSON.stringify(e));
  }
  const ctx = contextOf(req, reply);
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": "application/connect+json", "x-request-id": req.id });
  res.flushHeaders();
  const alive = (): boolean => !ctx.signal.aborted && !res.destroyed && !res.writableEnded;
  const pingS = keepaliveSeconds(req);
  let lastSent = Date.now();
  const pinger =
    pingS && m.keepalive !== undefined
      ? setInterval(
          () => {
            if (alive() && Date.now() - lastSent >= pingS * 1000 && res.writableLength === 0) {
              res.write(envelope(0, m.keepalive));
              lastSent = Date.now();
            }
          },
          Math.min(pingS * 1000, 10_000),
        )
      : null;
  const send = async (msg: unknown): Promise<void> => {
    if (!alive()) return;
    res.write(envelope(0, msg));
    lastSent = Date.now();
    if (res.writableLength > HIGH_WATER) await drained(res, ctx.signal);
  };
  let end: unknown = {};
  try {
    await m.handle(call, input, send, ctx);
  } catch (error) {
    const e = toConnectError(error);
    if (e.code === "internal") req.log.error({ err: error }, "e2b stream failed");
    end = { error: e };
  } finally {
    if (pinger) clearInterval(pinger);
  }
  if (alive()) res.end(envelope(END_STREAM, end));
}

/** Resolves when the socket drains; a client that takes nothing for STALL_MS is dropped. */
function drained(res: FastifyReply["raw"], gone: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      res.off("drain", done);
      gone.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(() => {
      res.destroy();
      done();
    }, STALL_MS);
    res.once("drain", done);
    gone.addEventListener("abort", done);
  });
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
      { config: { scope: "public" }, schema: { hide: true } },
      (req, reply) =>
        m.kind === "unary" ? unary(m, deps, req, reply) : stream(m, deps, req, reply),
    );
}

/** Registers the stream content type, read as raw bytes bounded to one envelope. */
export function acceptConnectStreams(app: FastifyInstance): void {
  app.addContentTypeParser(
    "application/connect+json",
    { parseAs: "buffer", bodyLimit: MAX_ENVELOPE_BYTES + 5 },
    (_req, body, done) => done(null, body),
  );
}
