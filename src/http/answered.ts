import type { FastifyReply, FastifyRequest } from "fastify";

/**
 * Calls `done` once, when the request's response has ended or its connection
 * has gone, whichever comes first. Both are needed: a pipelined response
 * queued behind another never closes on its own if the socket dies first.
 */
export function whenAnswered(request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  const socket = request.raw.socket;
  const once = (): void => {
    reply.raw.off("close", once);
    socket.off("close", once);
    done();
  };
  if (reply.raw.destroyed || socket.destroyed) return done();
  reply.raw.once("close", once);
  socket.once("close", once);
}
