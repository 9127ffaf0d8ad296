/** Server-Sent Events: one helper for every streamed response (executions, sessions). */
import type { FastifyReply, FastifyRequest } from "fastify";

const HEARTBEAT_MS = 15_000;

export interface EventStream {
  send: (event: string, data: unknown) => void;
  end: () => void;
  /** Called once when the client goes away (or the stream ends). */
  onClose: (listener: () => void) => void;
}

/** Does the client ask for an event stream rather than one JSON answer? */
export function wantsEventStream(request: FastifyRequest): boolean {
  return (request.headers.accept ?? "").includes("text/event-stream");
}

/** Takes the response over and opens an event stream with a keep-alive comment every 15 s. */
export function openEventStream(request: FastifyRequest, reply: FastifyReply): EventStream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-request-id": request.id,
    "x-content-type-options": "nosniff",
  });
  const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
  res.on("close", () => clearInterval(heartbeat));
  return {
    send: (event, data) => {
      if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    end: () => {
      clearInterval(heartbeat);
      res.end();
    },
    onClose: (listener) => res.on("close", listener),
  };
}
