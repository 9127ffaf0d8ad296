/**
 * `WS /api/v2/connect`: Piston's interactive socket (protocol in
 * piston-socket.ts). The upgrade is routed through Fastify, so the Gate
 * authenticates it like the Piston REST routes (a key with the execute scope,
 * or none as `anonymous` exactly when server.pistonAnonymous allows it), rate
 * limits it, and counts it as an open request until the socket closes.
 *
 * Upgrades are shared with web previews (previews.ts listens on the server's
 * `upgrade` too): @fastify/websocket listens on a private emitter that gets
 * only this path, and previews.ts leaves this path alone, so each upgrade has
 * exactly one owner.
 */
import { EventEmitter } from "node:events";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import websocket from "@fastify/websocket";
import type { FastifyPluginAsync } from "fastify";
import { runActor } from "../run-request.js";
import { PistonConnection, type PistonSocketDeps } from "./piston-socket.js";

export const PISTON_CONNECT_PATH = "/api/v2/connect";

/** Whether an upgrade request is for Piston's socket (its path, any query). */
export function isPistonConnect(url: string | undefined): boolean {
  const path = (url ?? "").split("?")[0];
  return path === PISTON_CONNECT_PATH;
}

export const pistonConnectRoutes: FastifyPluginAsync<PistonSocketDeps> = async (app, deps) => {
  const upgrades = new EventEmitter();
  app.server.on("upgrade", (raw: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (isPistonConnect(raw.url)) upgrades.emit("upgrade", raw, socket, head);
  });
  await app.register(websocket, {
    options: {
      server: upgrades as unknown as Server,
      // A frame is at most a request body (an init carries the files): ws
      // refuses a larger one with 1009 before buffering it whole.
      maxPayload: deps.config.server.bodyLimitBytes,
      // Compressed frames could inflate past maxPayload's intent: none.
      perMessageDeflate: false,
    },
    errorHandler: (_error, socket) => socket.terminate(),
  });
  // A refused upgrade (401, 403, 429...) got its answer; the socket is no
  // longer Node's HTTP server's to close, so it is closed here.
  app.addHook("onResponse", async (request) => {
    if (request.headers.upgrade) request.raw.socket.end();
  });
  app.get(
    PISTON_CONNECT_PATH,
    {
      websocket: true,
      config: { scope: "execute", anonymous: true },
      schema: { summary: "Piston: interactive execution (WebSocket)", tags: ["piston"] },
    },
    (socket, request) => new PistonConnection(socket, runActor(request.actor!), deps).start(),
  );
};
