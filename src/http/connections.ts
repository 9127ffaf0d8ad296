/**
 * Connection-level limits: what Node's HTTP server enforces before Fastify
 * sees a request (timeouts, header size, requests per socket, connection
 * counts), and the answers it gives when one trips. Node's and Fastify's
 * defaults leave a request body without any deadline, keep idle sockets for
 * 72 s, check deadlines only every 30 s and accept any number of connections
 * and pipelined requests; docs/boundary/http.md lists each setting here with
 * the attack it stops.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import type { ConnectionLimits } from "../config/schema.js";
import { WardenError } from "../errors.js";
import { ulid } from "../util/ids.js";
import { errorBody } from "./errors.js";
import type { RefusalLog } from "./refusals.js";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
type Warn = (ip: string, message: string) => void;

/**
 * Fastify's serverFactory: the HTTP(S) server with every limit set, the
 * connection caps on it, and the URL length checked before Fastify routes
 * (its router would otherwise parse, and echo back, a 100 KB path first).
 */
export function serverFactory(
  limits: ConnectionLimits,
  refusals: RefusalLog,
  warn: Warn,
  tls?: { cert: Buffer; key: Buffer },
) {
  return (handler: Handler): Server => {
    const options = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      // Node checks the two timeouts on this tick (default 30 s, which would
      // let a slowloris client keep a socket 30 s past its deadline).
      connectionsCheckingInterval: Math.min(1000, Math.floor(limits.headersTimeoutMs / 2)),
    };
    const onRequest: Handler = (req, res) => {
      if ((req.url ?? "").length <= limits.maxUrlBytes) return handler(req, res);
      const ip = req.socket.remoteAddress ?? "unknown";
      const message = `url: longer than ${limits.maxUrlBytes} bytes`;
      if (refusals.shouldLog(ip, "http_414")) warn(ip, message);
      const body = errorJson(message);
      res.writeHead(414, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        connection: "close",
      });
      res.end(body);
    };
    // An https.Server is an http.Server for everything Fastify and we touch here.
    const server = tls
      ? (createHttpsServer({ ...tls, ...options }, onRequest) as unknown as Server)
      : createHttpServer(options, onRequest);
    server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
    // No socket inactivity timeout: a wait for a long run is legitimately
    // silent for up to maxTimeout; the deadlines above bound what a client sends.
    server.setTimeout(0);
    guardConnections(server, limits, refusals, warn);
    return server;
  };
}

function errorJson(message: string): string {
  return JSON.stringify(errorBody(new WardenError("INVALID_REQUEST", message), `req_${ulid()}`));
}

/**
 * Caps open connections in total and per client address. Over the cap the
 * socket is closed at once, before any byte is parsed: refusing must cost
 * less than what the client spent to connect.
 */
function guardConnections(
  server: Server,
  limits: ConnectionLimits,
  refusals: RefusalLog,
  warn: Warn,
): void {
  server.maxConnections = limits.maxConnections;
  server.on("drop", (data?: { remoteAddress?: string }) => {
    const ip = data?.remoteAddress ?? "unknown";
    if (refusals.shouldLog(ip, "connection_refused"))
      warn(ip, `connection refused: ${limits.maxConnections} connections open (maxConnections)`);
  });
  const open = new Map<string, number>();
  server.on("connection", (socket: Socket) => {
    const ip = socket.remoteAddress ?? "unknown";
    const count = (open.get(ip) ?? 0) + 1;
    if (count > limits.maxConnectionsPerIp) {
      socket.destroy();
      if (refusals.shouldLog(ip, "connection_refused"))
        warn(
          ip,
          `connection refused: ${limits.maxConnectionsPerIp} open from this address (maxConnectionsPerIp)`,
        );
      return;
    }
    open.set(ip, count);
    socket.once("close", () => {
      const left = (open.get(ip) ?? 1) - 1;
      if (left > 0) open.set(ip, left);
      else open.delete(ip);
    });
  });
}

/**
 * Answers what Node's parser refuses (timeouts, oversized headers, broken
 * HTTP) in the API's error shape, then closes the socket. Logged through
 * the refusal log, so a flood of broken requests costs no log growth.
 */
export function clientErrorHandler(limits: ConnectionLimits, refusals: RefusalLog, warn: Warn) {
  return (error: NodeJS.ErrnoException, socket: Socket): void => {
    if (error.code === "ECONNRESET" || socket.destroyed) return;
    let status = 400;
    let reason = "Bad Request";
    let message = "request: not valid HTTP/1.1";
    if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
      status = 408;
      reason = "Request Timeout";
      message = `request: headers not complete within ${limits.headersTimeoutMs} ms, or the whole request within ${limits.requestTimeoutMs} ms`;
    } else if (error.code === "HPE_HEADER_OVERFLOW") {
      status = 431;
      reason = "Request Header Fields Too Large";
      message = `headers: request line and headers larger than ${limits.maxHeaderBytes} bytes`;
    }
    const ip = socket.remoteAddress ?? "unknown";
    if (refusals.shouldLog(ip, `http_${status}`)) warn(ip, message);
    if (socket.writable) {
      const body = errorJson(message);
      socket.write(
        `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}
