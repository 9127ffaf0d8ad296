/**
 * One delivery attempt: a POST to a checked address. The receiver is
 * untrusted: the connection goes to the address checked (a custom lookup
 * pins it, so a second DNS answer is never used), redirects are not
 * followed (a 3xx is a failed attempt), the whole attempt has one deadline,
 * and at most `maxResponseBytes` of the answer are read before the
 * connection is cut — a receiver that answers gigabytes costs nothing.
 */
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { ipLiteral } from "../util/hostname.js";
import type { ResolvedAddress } from "./url-check.js";

export interface AttemptRequest {
  url: URL;
  /** Already checked (url-check.ts): the only address this attempt connects to. */
  address: ResolvedAddress;
  method: "POST" | "PUT";
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  /** The answer's body is read up to this, then discarded. @default 4096 */
  maxResponseBytes?: number;
}

export interface AttemptResult {
  /** The receiver's HTTP status; null when none came. */
  status: number | null;
  error: string | null;
  durationMs: number;
}

/** A lookup that answers the checked address whatever is asked (both callback shapes). */
function pinned(address: ResolvedAddress): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address: address.address, family: address.family }]);
    else callback(null, address.address, address.family);
  };
}

export function sendAttempt(r: AttemptRequest): Promise<AttemptResult> {
  const started = Date.now();
  const maxBytes = r.maxResponseBytes ?? 4096;
  const ip = ipLiteral(r.url.hostname);
  const host = ip ?? r.url.hostname;
  const secure = r.url.protocol === "https:";
  return new Promise((resolve) => {
    let settled = false;
    const done = (status: number | null, error: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status, error, durationMs: Date.now() - started });
    };
    const request = (secure ? https : http).request({
      protocol: r.url.protocol,
      host,
      port: r.url.port || (secure ? 443 : 80),
      path: `${r.url.pathname}${r.url.search}`,
      method: r.method,
      headers: { ...r.headers, "content-length": String(Buffer.byteLength(r.body)) },
      // No pooled sockets: each attempt dials its own checked address.
      agent: false,
      lookup: pinned(r.address),
      ...(secure && ip === null ? { servername: host } : {}),
    });
    const timer = setTimeout(() => {
      request.destroy();
      done(null, `timed out after ${r.timeoutMs} ms`);
    }, r.timeoutMs);
    request.on("error", (error: NodeJS.ErrnoException) =>
      done(null, error.code ? `${error.code}: ${error.message}` : error.message),
    );
    request.on("response", (response) => {
      const status = response.statusCode ?? 0;
      let read = 0;
      response.on("data", (chunk: Buffer) => {
        read += chunk.length;
        // Enough to know it answered; the rest is never read.
        if (read >= maxBytes) {
          response.destroy();
          request.destroy();
          done(status, status >= 200 && status < 300 ? null : `HTTP ${status}`);
        }
      });
      response.on("error", () => undefined);
      const finish = (): void =>
        done(
          status,
          status >= 200 && status < 300
            ? null
            : status >= 300 && status < 400
              ? `HTTP ${status}: redirects are not followed`
              : `HTTP ${status}`,
        );
      response.on("end", finish);
      response.on("close", finish);
    });
    request.end(r.body);
  });
}
