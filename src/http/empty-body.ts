/**
 * Routes that act on their URL alone (kill, cancel, end) take no body. Many
 * clients still send `Content-Type: application/json` with nothing after it,
 * which Fastify's JSON parser refuses ("body cannot be empty"). As a
 * route-level `preParsing` hook (it runs before the parser is chosen), this
 * turns a request whose body is empty — declared so, or chunked with no data
 * — into one with no body at all; a body that is there (`{}`, `{"signal":
 * ...}`) is parsed as usual, under the usual limits.
 */
import type { FastifyReply, FastifyRequest, RequestPayload } from "fastify";

/** Resolves with the first chunk of `payload`, or null when it ends with none. */
function firstChunk(payload: RequestPayload): Promise<Buffer | null> {
  if (payload.readableEnded) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, chunk: Buffer | null): void => {
      payload.off("readable", onReadable);
      payload.off("end", onEnd);
      payload.off("error", onError);
      if (error) reject(error);
      else resolve(chunk);
    };
    const onReadable = (): void => done(null, payload.read() as Buffer | null);
    const onEnd = (): void => done(null, null);
    const onError = (error: Error): void => done(error, null);
    payload.on("readable", onReadable);
    payload.on("end", onEnd);
    payload.on("error", onError);
  });
}

export async function emptyBodyIsNoBody(
  request: FastifyRequest,
  _reply: FastifyReply,
  payload: RequestPayload,
): Promise<RequestPayload> {
  const headers = request.raw.headers;
  const length = headers["content-length"];
  if (headers["transfer-encoding"] === undefined) {
    if (length === undefined || length === "0") delete headers["content-type"];
    return payload;
  }
  const chunk = await firstChunk(payload);
  if (chunk === null) {
    // Chunked and empty: the same as no body (the framing was Node's; it is done).
    delete headers["content-type"];
    delete headers["transfer-encoding"];
  } else payload.unshift(chunk);
  return payload;
}
