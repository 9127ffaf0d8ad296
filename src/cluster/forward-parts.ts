/** Small pieces of forward.ts: the body bound, error mapping, and MCP's sandbox ids. */
import { Transform, type Readable } from "node:stream";
import { WardenError } from "../errors.js";
import { INTERNAL_HEADER, PRINCIPAL_HEADER } from "./internal-auth.js";

/**
 * Hop-by-hop and identity headers a client must not pass to a worker. The
 * `x-forwarded-*`/`forwarded` family goes too: a worker whose trustProxy
 * covers the API nodes' addresses would take the client's claim as its
 * address (the principal carries the one the API node saw); cookies are
 * nothing a worker reads.
 */
export const DROPPED = [
  "authorization",
  INTERNAL_HEADER,
  PRINCIPAL_HEADER,
  "transfer-encoding",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "proxy-authorization",
  "proxy-connection",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-port",
  "x-real-ip",
  "cookie",
];

/** A forwarded body past the API node's bound: 413, as the worker would answer. */
export class BodyTooLarge extends WardenError {
  constructor(limit: number) {
    super("INVALID_REQUEST", `body: larger than the limit of ${limit} bytes`, {
      details: { httpStatus: 413 },
    });
  }
}

/**
 * The request body as it streams to the worker, counted as it arrives: past
 * `limit` bytes the stream fails, so an API node never relays (or holds) more
 * than that, whatever the client declared.
 */
export function boundedBody(source: Readable, limit: number, onCut: () => void): Readable {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > limit) {
        onCut();
        done(new BodyTooLarge(limit));
        return;
      }
      done(null, chunk);
    },
  });
  source.on("error", (error) => counter.destroy(error));
  return source.pipe(counter);
}

/** What a failed exchange with a worker tells the client: which worker, never how. */
export function upstreamError(workerId: string, error: unknown): WardenError {
  if (error instanceof WardenError) return error;
  const code = (error as { code?: string; statusCode?: number }).code ?? "";
  if (code.includes("TIMEOUT"))
    return new WardenError("UPSTREAM_TIMEOUT", `worker ${workerId} did not answer in time`, {
      details: { workerId },
    });
  return new WardenError("UPSTREAM_UNAVAILABLE", `worker ${workerId} did not answer`, {
    details: { workerId, retryAfterSeconds: 1 },
  });
}

const SANDBOX_URI = /^sandbox:\/\/(sess_[0-9A-Z]{26})\//;

/**
 * The sandbox ids (session ids) a JSON-RPC body names: `sandbox_id` of tool
 * calls and `sandbox://<id>/` resource URIs. Bounded by the body's own bound
 * (the JSON parser's depth and key limits); only two levels are looked at.
 */
export function mcpSandboxes(body: unknown): { ids: string[]; creates: boolean } {
  const ids = new Set<string>();
  let creates = false;
  for (const m of Array.isArray(body) ? body : [body]) {
    if (typeof m !== "object" || m === null) continue;
    const params = (m as { params?: unknown }).params;
    if (typeof params !== "object" || params === null) continue;
    const p = params as { arguments?: unknown; uri?: unknown; name?: unknown };
    if (p.name === "create_sandbox") creates = true;
    const args = p.arguments;
    if (typeof args === "object" && args !== null) {
      const id = (args as { sandbox_id?: unknown }).sandbox_id;
      if (typeof id === "string") ids.add(id);
    }
    if (typeof p.uri === "string") {
      const match = SANDBOX_URI.exec(p.uri);
      if (match?.[1]) ids.add(match[1]);
    }
  }
  return { ids: [...ids], creates };
}
