/**
 * Connect's envelope: 1 flags byte, a 4-byte big-endian length, the message.
 * A stream request is exactly one of them, read from a body Fastify has
 * already bounded (acceptConnectStreams), so the length in the header is
 * checked against the bytes that arrived and never drives an allocation.
 */
import { PlaneError } from "./plane.js";

/** Largest request envelope: every E2B request message is small (stdin chunks are 64 KiB). */
export const MAX_ENVELOPE_BYTES = 1024 * 1024;
export const END_STREAM = 0x02;
const COMPRESSED = 0x01;

function refused(message: string): PlaneError {
  return new PlaneError("invalid_argument", `stream request: ${message}`, 400);
}

/** The message of the one envelope in `body`; invalid_argument on anything else. */
export function readEnvelope(body: unknown): unknown {
  if (!Buffer.isBuffer(body) || body.length < 5) throw refused("no envelope");
  const flags = body[0]!;
  const length = body.readUInt32BE(1);
  if (flags & COMPRESSED) throw refused("compression is not supported");
  if (flags !== 0) throw refused(`flags ${flags}: only a message envelope (0) is taken`);
  if (length > MAX_ENVELOPE_BYTES)
    throw refused(`an envelope of at most ${MAX_ENVELOPE_BYTES} bytes (header says ${length})`);
  if (body.length < 5 + length)
    throw refused(`truncated envelope (${body.length - 5} of ${length} bytes)`);
  if (body.length > 5 + length) throw refused("exactly one envelope (more bytes follow it)");
  try {
    return JSON.parse(body.subarray(5).toString("utf8"));
  } catch {
    throw new PlaneError("invalid_argument", "request message is not valid JSON", 400);
  }
}

/** One response envelope. */
export function envelope(flags: number, message: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(json.length, 1);
  return Buffer.concat([head, json]);
}
