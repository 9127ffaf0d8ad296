/**
 * `sandbox.getHost(port)`: E2B's SDK builds `<port>-<sandboxId>.<domain>` and
 * the user's browser or curl sends whatever path to it. Such a request (by
 * its Host), and one under /e2b whose `E2b-Sandbox-Port` is neither envd's
 * nor the interpreter's, is rewritten before routing to `/e2b/_host/<port>/<id>/...`
 * and relayed to that port inside the session exactly like a web preview
 * (src/http/routes/previews.ts): the same strict exchange and the same header
 * allow-lists both ways. Browsers carry no Warden key, so the proof is the
 * sandbox's traffic token (`E2B-Traffic-Access-Token`), unless the server
 * opts into public ports (e2b.publicPorts).
 */
import type { IncomingMessage } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { E2bConfig } from "../../config/e2b-config.js";
import { WardenError } from "../../errors.js";
import { relayToPort } from "../preview-relay.js";
import { PlaneError, toSessionId, type E2bDeps } from "./plane.js";

const HOST_ROUTE = "/e2b/_host";
const PORT_HOST = /^(\d{1,5})-([0-9a-z]{26})\.([a-z0-9.-]{1,253}(?::\d{1,5})?)$/;
const PLANE_PORTS = new Set(["49983", "49999"]);

/**
 * Fastify's rewriteUrl: the URL a request is routed by. Only a Host of the
 * getHost form (under e2b.domain when set) or an /e2b request naming another
 * port changes; everything else keeps its URL.
 */
export function e2bHostRewrite(e2b: E2bConfig): (req: IncomingMessage) => string {
  return (req) => {
    const url = req.url ?? "/";
    const host = req.headers.host?.toLowerCase();
    const m = host ? PORT_HOST.exec(host) : null;
    const path = url.startsWith("/") ? url : "/";
    if (m && (!e2b.domain || m[3] === e2b.domain)) return `${HOST_ROUTE}/${m[1]}/${m[2]}${path}`;
    if (!url.startsWith("/e2b/")) return url;
    const port = req.headers["e2b-sandbox-port"];
    const id = req.headers["e2b-sandbox-id"];
    if (typeof port !== "string" || !/^\d{1,5}$/.test(port) || PLANE_PORTS.has(port)) return url;
    if (typeof id !== "string" || !/^[0-9a-z]{26}$/i.test(id)) return url;
    return `${HOST_ROUTE}/${port}/${id.toLowerCase()}${url.slice("/e2b".length)}`;
  };
}

/** The relay behind the rewrite; its own scope so that bodies pass through unparsed. */
export async function hostRoutes(app: FastifyInstance, deps: E2bDeps): Promise<void> {
  await app.register(async (sub) => {
    sub.removeAllContentTypeParsers();
    sub.addContentTypeParser("*", (_request, payload, done) => done(null, payload));
    const options = { config: { scope: "public" as const }, schema: { hide: true } };
    sub.all("/_host/:port/:id", options, (request, reply) => relay(deps, request, reply));
    sub.all("/_host/:port/:id/*", options, (request, reply) => relay(deps, request, reply));
  });
}

async function relay(deps: E2bDeps, request: FastifyRequest, reply: FastifyReply) {
  const params = request.params as { port: string; id: string };
  const port = Number(params.port);
  const sessionId = toSessionId(params.id);
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new WardenError("INVALID_REQUEST", "port: 1-65535");
  const refused = new PlaneError(
    "unauthenticated",
    "sandbox traffic token missing or not valid for this sandbox (E2B-Traffic-Access-Token)",
    401,
  );
  if (!sessionId) throw refused;
  if (!deps.config.e2b.publicPorts) {
    const token = request.headers["e2b-traffic-access-token"];
    if (typeof token !== "string" || token.length > 512 || !deps.tokens.matches(sessionId, token))
      throw refused;
  }
  let owner: string;
  try {
    owner = deps.sessions.get(sessionId, "", true).userId;
  } catch {
    throw new PlaneError("not_found", `sandbox ${params.id} is not running`, 502);
  }
  const socket = await deps.sessions.openPort(sessionId, owner, port);
  const prefix = `${HOST_ROUTE}/${port}/${params.id}`;
  const url = request.raw.url ?? "";
  const path = url.startsWith(prefix) ? url.slice(prefix.length) || "/" : "/";
  // The app is served at the root of its own host name: no prefix to add.
  return relayToPort(request, reply, socket, port, "", path);
}
