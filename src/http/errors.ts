/**
 * One error handler for every route: WardenErrors keep their code and HTTP
 * status; Fastify's own (bad JSON, body too large, wrong content type,
 * schema validation) become INVALID_REQUEST naming the field; anything else
 * is INTERNAL with no detail. Bodies are `{error: {code, message, requestId}}`
 * and never carry a stack, a host path or SQL.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { ERROR_CODES, WardenError, type ErrorCode } from "../errors.js";

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId: string; details?: Record<string, unknown> };
}

/** Fastify and zod validation issues → `field: message; ...` */
function validationMessage(error: FastifyError): string {
  const issues = error.validation ?? [];
  if (issues.length === 0) return error.message;
  return issues
    .slice(0, 10)
    .map((issue) => {
      const params = issue.params as { issue?: { path?: (string | number)[] } } | undefined;
      const path =
        params?.issue?.path?.join(".") ||
        issue.instancePath?.replace(/^\//, "").replaceAll("/", ".");
      const message = issue.message ?? "is invalid";
      // Our own refinements already start with the field name.
      return path && !message.startsWith(`${path}:`) ? `${path}: ${message}` : message;
    })
    .join("; ");
}

export function toWardenError(error: unknown): WardenError {
  if (error instanceof WardenError) return error;
  const e = error as FastifyError;
  if (e.validation) return new WardenError("INVALID_REQUEST", validationMessage(e));
  switch (e.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new WardenError(
        "INVALID_REQUEST",
        `body: larger than the limit of ${e.message.match(/\d+/)?.[0] ?? "?"} bytes`,
        {
          details: { httpStatus: 413 },
        },
      );
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new WardenError("INVALID_REQUEST", "content-type: send application/json", {
        details: { httpStatus: 415 },
      });
    // Router refusals: the offending path is not echoed back.
    case "FST_ERR_BAD_URL":
      return new WardenError("INVALID_REQUEST", "url: not a valid URL (bad percent-encoding)");
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new WardenError("INVALID_REQUEST", "url: a path segment is too long", {
        details: { httpStatus: 414 },
      });
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new WardenError("INVALID_REQUEST", "body: empty; send a JSON object");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new WardenError("INVALID_REQUEST", "body: not valid JSON");
    default:
      break;
  }
  if (e instanceof SyntaxError || (e.statusCode === 400 && /JSON/i.test(e.message)))
    return new WardenError("INVALID_REQUEST", "body: not valid JSON");
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500)
    return new WardenError("INVALID_REQUEST", "the request could not be read", {
      details: { httpStatus: e.statusCode },
    });
  return new WardenError("INTERNAL", "internal error");
}

export function statusOf(error: WardenError): number {
  const override = error.details?.httpStatus;
  return typeof override === "number" ? override : ERROR_CODES[error.code].httpStatus;
}

export function errorBody(error: WardenError, requestId: string): ErrorBody {
  const details = { ...error.details };
  delete details.httpStatus;
  return {
    error: {
      code: error.code,
      message: error.message,
      requestId,
      ...(Object.keys(details).length > 0 ? { details } : {}),
    },
  };
}

export async function sendError(
  reply: FastifyReply,
  request: FastifyRequest,
  error: unknown,
): Promise<void> {
  const e = toWardenError(error);
  if (e.code === "INTERNAL") request.log.error({ err: error }, "request failed");
  const retryAfter = e.details?.retryAfterSeconds;
  if (typeof retryAfter === "number") void reply.header("Retry-After", String(retryAfter));
  // A quota's reset, as a time (docs/usage.md).
  const resetsAt = e.code === "QUOTA_EXCEEDED" ? e.details?.resetsAt : undefined;
  if (typeof resetsAt === "string") void reply.header("X-Quota-Reset", resetsAt);
  await reply.status(statusOf(e)).send(errorBody(e, request.id));
}
