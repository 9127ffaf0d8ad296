/**
 * Every error code Warden reports, defined once with its HTTP status and
 * whether a client may retry. Interfaces map `WardenError` to their own shape;
 * nothing else invents a code.
 */
export const ERROR_CODES = {
  // The spec's retryable errno classes, in the API's own words: nothing
  // answers (ECONNREFUSED, ECONNRESET) and no answer in time (ETIMEDOUT).
  UPSTREAM_UNAVAILABLE: { httpStatus: 502, retryable: true },
  UPSTREAM_TIMEOUT: { httpStatus: 504, retryable: true },
  // A server inside a session answered with something that is not valid HTTP.
  UPSTREAM_INVALID: { httpStatus: 502, retryable: false },
  SANDBOX_BUSY: { httpStatus: 503, retryable: true },
  RATE_LIMIT: { httpStatus: 429, retryable: true },
  INVALID_CODE: { httpStatus: 422, retryable: false },
  PERMISSION_DENIED: { httpStatus: 403, retryable: false },
  QUOTA_EXCEEDED: { httpStatus: 429, retryable: false },
  MALICIOUS_CODE: { httpStatus: 422, retryable: false },
  INVALID_REQUEST: { httpStatus: 400, retryable: false },
  NOT_FOUND: { httpStatus: 404, retryable: false },
  UNAUTHORIZED: { httpStatus: 401, retryable: false },
  UNSUPPORTED_LANGUAGE: { httpStatus: 400, retryable: false },
  ISOLATION_UNAVAILABLE: { httpStatus: 503, retryable: false },
  INTERNAL: { httpStatus: 500, retryable: false },
  // A call to a session that is paused: resume it first (POST /v1/sessions/:id/resume).
  SESSION_PAUSED: { httpStatus: 409, retryable: false },
  // Cluster: the worker running this execution (or holding this session) died.
  WORKER_LOST: { httpStatus: 503, retryable: true },
  // The key is forced to the gvisor tier and the request asked for namespaces.
  ISOLATION_FORBIDDEN: { httpStatus: 403, retryable: false },
} as const satisfies Record<string, { httpStatus: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The `error` member of the result shape. */
export interface ErrorInfo {
  code: ErrorCode;
  message: string;
  retryable: boolean;
}

export class WardenError extends Error {
  readonly code: ErrorCode;
  /** Extra facts for the client (e.g. the offending field); never a stack. */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "WardenError";
    this.code = code;
    this.details = options?.details;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].httpStatus;
  }

  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }

  toInfo(): ErrorInfo {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}

/** Turns anything thrown into an `ErrorInfo` a client may see: unknown faults become INTERNAL without internals. */
export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof WardenError) return error.toInfo();
  return { code: "INTERNAL", message: "internal error", retryable: false };
}
