/**
 * JSON text of a value as a series of small strings. A result holds up to
 * four outputs of `outputBytes` each, and JSON writes a control byte as six
 * characters: as one string that could pass V8's longest string (~512 Mi
 * characters) and throw, and it would be one more full copy in memory. Long
 * strings are escaped slice by slice instead, so no piece is larger than
 * about 6 × SLICE_CHARS and a writer can wait for the socket between pieces.
 */
import { Readable } from "node:stream";
import type { FastifyReply } from "fastify";

const SLICE_CHARS = 1 << 16;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Yields the same text as `JSON.stringify(value)`, in pieces. */
export function* jsonPieces(value: unknown): Generator<string> {
  if (typeof value === "string" && value.length > SLICE_CHARS) {
    yield '"';
    for (let start = 0; start < value.length; start += SLICE_CHARS)
      // A surrogate pair split here is written as two \u escapes, which parse back as the pair.
      yield JSON.stringify(value.slice(start, start + SLICE_CHARS)).slice(1, -1);
    yield '"';
    return;
  }
  if (Array.isArray(value)) {
    yield "[";
    for (const [i, item] of value.entries()) {
      if (i > 0) yield ",";
      if (item === undefined || typeof item === "function") yield "null";
      else yield* jsonPieces(item);
    }
    yield "]";
    return;
  }
  if (isPlainObject(value)) {
    yield "{";
    let first = true;
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined || typeof item === "function") continue;
      yield `${first ? "" : ","}${JSON.stringify(key)}:`;
      first = false;
      yield* jsonPieces(item);
    }
    yield "}";
    return;
  }
  yield JSON.stringify(value) ?? "null";
}

/** Pieces gathered into strings of about `chars`, for fewer socket writes. */
export function* batched(pieces: Iterable<string>, chars = 64 * 1024): Generator<string> {
  let batch = "";
  for (const piece of pieces) {
    batch += piece;
    if (batch.length >= chars) {
      yield batch;
      batch = "";
    }
  }
  if (batch) yield batch;
}

/** Below this many characters of strings a value is sent as one JSON text. */
const SMALL_CHARS = 64 * 1024;

/**
 * Characters in the strings and keys of `value`, counted up to `limit`: the
 * walk stops as soon as the total passes it, so a large output is not read.
 */
function charsUpTo(value: unknown, limit: number): number {
  if (typeof value === "string") return value.length;
  if (typeof value !== "object" || value === null) return 0;
  let total = 0;
  for (const [key, item] of Object.entries(value)) {
    total += key.length + charsUpTo(item, limit - total);
    if (total > limit) return total;
  }
  return total;
}

/**
 * Answers with `value` as JSON, streamed piece by piece as the client reads:
 * a result with large output is never one escaped string in memory. A small
 * one (most results) is one string at most 6 × SMALL_CHARS long: a stream
 * would cost more than the text.
 */
export function sendJson(reply: FastifyReply, value: unknown): FastifyReply {
  void reply.type("application/json; charset=utf-8");
  if (charsUpTo(value, SMALL_CHARS) <= SMALL_CHARS) return reply.send(JSON.stringify(value));
  return reply.send(Readable.from(batched(jsonPieces(value)), { objectMode: false }));
}
