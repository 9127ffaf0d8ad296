/**
 * SOCKS5 (RFC 1928) as the egress proxy speaks it: no authentication,
 * CONNECT only, by name only. Pure parsers over the bytes received so far,
 * each answering "need more", a result and the bytes it used, or why the
 * message is malformed; both messages have a fixed upper size (257 and 262
 * bytes), so nothing here grows with what the program sends.
 */

export type Parsed<T> =
  { state: "more" } | { state: "bad"; reason: string } | { state: "done"; value: T; used: number };

/** The greeting: version 5 and 1-255 methods; we need "no authentication" (0) among them. */
export function parseGreeting(buf: Buffer): Parsed<{ noAuth: boolean }> {
  if (buf.length >= 1 && buf[0] !== 0x05) return { state: "bad", reason: "not SOCKS version 5" };
  if (buf.length < 2) return { state: "more" };
  const count = buf[1]!;
  if (count === 0) return { state: "bad", reason: "SOCKS greeting offers no methods" };
  if (buf.length < 2 + count) return { state: "more" };
  const methods = buf.subarray(2, 2 + count);
  return { state: "done", value: { noAuth: methods.includes(0x00) }, used: 2 + count };
}

export interface SocksRequest {
  command: number;
  /** 1 IPv4, 3 domain name, 4 IPv6. */
  addressType: number;
  /** The name's bytes as latin1 (for type 3); empty for addresses. */
  name: string;
  port: number;
}

/** The request: VER CMD RSV ATYP DST.ADDR DST.PORT. */
export function parseRequest(buf: Buffer): Parsed<SocksRequest> {
  if (buf.length >= 1 && buf[0] !== 0x05) return { state: "bad", reason: "not SOCKS version 5" };
  if (buf.length >= 3 && buf[2] !== 0x00)
    return { state: "bad", reason: "SOCKS reserved byte is not 0" };
  if (buf.length < 4) return { state: "more" };
  const addressType = buf[3]!;
  let start = 4;
  let length: number;
  if (addressType === 0x01) length = 4;
  else if (addressType === 0x04) length = 16;
  else if (addressType === 0x03) {
    if (buf.length < 5) return { state: "more" };
    length = buf[4]!;
    start = 5;
    if (length === 0) return { state: "bad", reason: "SOCKS name is empty" };
  } else return { state: "bad", reason: "SOCKS address type is not 1, 3 or 4" };
  const used = start + length + 2;
  if (buf.length < used) return { state: "more" };
  return {
    state: "done",
    value: {
      command: buf[1]!,
      addressType,
      name: addressType === 0x03 ? buf.subarray(start, start + length).toString("latin1") : "",
      port: buf.readUInt16BE(start + length),
    },
    used,
  };
}

/** Replies: 0 succeeded, 1 general failure, 2 not allowed by ruleset, 7 command not supported, 8 address type not supported. */
export function reply(code: number): Buffer {
  return Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}
