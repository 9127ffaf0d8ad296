/**
 * An API node's routing of session-bound calls. The Gate has checked the key,
 * its scope and the rate limits; then, before the body is read (preParsing),
 * a call for a session is looked up in the registry and streamed to the
 * worker that holds it over the signed internal channel (internal-auth.ts),
 * and the worker's answer comes back as it is, SSE included, unbuffered.
 * Creates go where placement.ts says. MCP calls are routed once their JSON
 * is parsed (preHandler), by the sandbox they name. Artifacts are not
 * forwarded: any API node serves them from the store.
 *
 * The worker checks ownership again (it gets the principal), so a mistake
 * here can send a call to the wrong worker but never to someone else's
 * session.
 */
import replyFrom from "@fastify/reply-from";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Readable } from "node:stream";
import { WardenError } from "../errors.js";
import type { Actor } from "../http/auth.js";
import { sendError } from "../http/errors.js";
import type { UpgradeRelay } from "../http/routes/previews.js";
import type { SessionRegistry } from "../store/store.js";
import {
  boundedBody,
  BodyTooLarge,
  DROPPED,
  mcpSandboxes,
  upstreamError,
} from "./forward-parts.js";
import { principalOf, signRequest } from "./internal-auth.js";
import type { Placement } from "./placement.js";
import { relayUpgrade } from "./upgrade-relay.js";
import type { WorkerDirectory, WorkerRow } from "./worker-directory.js";

export interface ClusterRoutingOptions {
  secret: string;
  workers: WorkerDirectory;
  registry: Pick<SessionRegistry, "get">;
  placement: Placement;
  /** Bytes a forwarded body may carry before the stream is cut (the worker holds the exact limits). */
  maxBodyBytes: number;
  /** Longest wait for a worker's response head (a session's /run waits for its cell). @default 15 minutes */
  headersTimeoutMs?: number;
  /** Routes of the API node itself that need the same directory (the admin cluster view). */
  routes?: (app: FastifyInstance) => Promise<void>;
}

export interface ClusterRouting {
  install(app: FastifyInstance): Promise<void>;
  relayUpgrade: UpgradeRelay;
}

const SESSION_ID = /^sess_[0-9A-Z]{26}$/;

/** A session that is known but over: 410, naming why (`worker_lost` when its worker died). */
export function sessionEnded(id: string, reason: string, workerId?: string): WardenError {
  const why = reason === "worker_lost" && workerId ? ` (worker ${workerId} stopped answering)` : "";
  return new WardenError("NOT_FOUND", `session ${id} ended: ${reason}${why}`, {
    details: { httpStatus: 410, reason },
  });
}

export function clusterRouting(o: ClusterRoutingOptions): ClusterRouting {
  const isAdmin = (actor: Actor): boolean => actor.key?.scopes.includes("admin") ?? false;

  /** The live worker that holds session `id`, for `actor`; the error to answer otherwise. */
  async function holderOf(id: string, actor: Actor): Promise<WorkerRow> {
    if (!SESSION_ID.test(id)) throw new WardenError("NOT_FOUND", `session ${id} not found`);
    const row = await o.registry.get(id);
    // Someone else's session is "not found", as on a single node: its existence is not told.
    if (!row || (row.userId !== actor.userId && !isAdmin(actor)))
      throw new WardenError("NOT_FOUND", `session ${id} not found`);
    if (row.endedAt !== null) throw sessionEnded(id, row.endReason ?? "ended", row.workerId);
    const worker = await o.workers.get(row.workerId);
    if (!o.workers.alive(worker)) throw sessionEnded(id, "worker_lost", row.workerId);
    return worker;
  }

  /**
   * The request target as the worker will see it (what is signed must be what
   * arrives). Fastify routed `raw` as it is, but URL parsing resolves an
   * absolute-form target (`http://host/...`) to that host and `..`, `%2e%2e`
   * or backslashes to another path: the API node would sign and send a call it never
   * routed, to any address (SSRF) or to a route it never checked (a create
   * past the user's cluster-wide count). Such targets are refused.
   */
  const targetAt = (worker: WorkerRow, raw: string): { url: string; target: string } => {
    const base = new URL(worker.url);
    const path = raw.split("?", 1)[0] ?? "";
    const url = new URL(raw, base);
    const dotted = path
      .split("/")
      .some((s) => [".", ".."].includes(s.toLowerCase().replaceAll("%2e", ".")));
    // eslint-disable-next-line no-control-regex
    const odd = path.includes("\\") || /[\x00-\x20\x7f]/.test(raw);
    if (
      !path.startsWith("/") ||
      path.startsWith("//") ||
      dotted ||
      odd ||
      url.origin !== base.origin
    )
      throw new WardenError(
        "INVALID_REQUEST",
        "path: an absolute URL, `.` or `..` segments and backslashes are not accepted",
      );
    return { url: url.href, target: `${url.pathname}${url.search}` };
  };

  function signedHeaders(request: FastifyRequest, method: string, target: string) {
    const actor = request.actor;
    if (!actor?.key)
      throw new WardenError("UNAUTHORIZED", "missing API key: send Authorization: Bearer <key>");
    return signRequest(o.secret, method, target, principalOf(actor.key, request.ip, request.id));
  }

  /** Streams this request to `worker` and its answer back; resolves when the answer is done. */
  function forward(
    request: FastifyRequest,
    reply: FastifyReply,
    worker: WorkerRow,
    payload?: Readable,
  ) {
    const { url, target } = targetAt(worker, request.raw.url ?? "/");
    const signed = signedHeaders(request, request.method, target);
    const hasBody =
      request.headers["transfer-encoding"] !== undefined ||
      Number(request.headers["content-length"] ?? 0) > 0;
    let cut = false;
    if (payload && hasBody)
      request.body = boundedBody(payload, o.maxBodyBytes, () => {
        cut = true;
      });
    return reply.from(url, {
      rewriteRequestHeaders: (_req, headers) => {
        const out = { ...headers };
        for (const name of DROPPED) delete out[name];
        // The client's Host, so the worker's answers name this node (MCP's URLs, redirects).
        if (request.headers.host) out.host = request.headers.host;
        return { ...out, ...signed };
      },
      onError: (r, { error }) =>
        void sendError(
          r as FastifyReply,
          request,
          cut ? new BodyTooLarge(o.maxBodyBytes) : upstreamError(worker.id, error),
        ),
    });
  }

  /** GET /v1/sessions: the user's sessions on every live worker, together. */
  async function listEverywhere(request: FastifyRequest, reply: FastifyReply) {
    const workers = (await o.workers.list()).filter((w) => o.workers.alive(w));
    const lists = await Promise.all(
      workers.map(async (w) => {
        const { url, target } = targetAt(w, request.raw.url ?? "/v1/sessions");
        const res = await fetch(url, { headers: signedHeaders(request, "GET", target) }).catch(
          () => null,
        );
        // A worker that does not answer now is left out; its sessions reappear when it does.
        if (!res?.ok) return [];
        return (await res.json()) as unknown[];
      }),
    );
    return reply.status(200).send(lists.flat());
  }

  /** GET /v1/notebooks/:id: notebook runs stay on the worker that ran them; ask each. */
  async function findNotebook(request: FastifyRequest, reply: FastifyReply) {
    for (const w of (await o.workers.list()).filter((x) => o.workers.alive(x))) {
      const { url, target } = targetAt(w, request.raw.url ?? "/");
      const res = await fetch(url, { headers: signedHeaders(request, "GET", target) }).catch(
        () => null,
      );
      if (!res || res.status === 404 || !res.body) continue;
      const type = res.headers.get("content-type");
      if (type) void reply.type(type);
      return reply.status(res.status).send(Readable.fromWeb(res.body as never));
    }
    throw new WardenError(
      "NOT_FOUND",
      `notebook ${(request.params as { id?: string }).id ?? ""} not found`,
    );
  }

  /** Where a call goes before its body is read; null = this node answers it. */
  async function route(request: FastifyRequest): Promise<WorkerRow | "list" | "notebook" | null> {
    const url = request.routeOptions.url ?? "";
    const method = request.method;
    const actor = request.actor;
    if (!actor) return null;
    const id = (request.params as { id?: string } | undefined)?.id ?? "";
    if (url === "/v1/sessions")
      return method === "POST" ? o.placement.forNewSandbox(actor.userId) : "list";
    if (url.startsWith("/v1/sessions/:id/artifacts")) return null;
    if (url.startsWith("/v1/sessions/:id")) return holderOf(id, actor);
    if (url === "/v1/notebooks" && method === "POST")
      return o.placement.forNewSandbox(actor.userId);
    if (url.startsWith("/v1/notebooks/:id")) return "notebook";
    if (url.startsWith("/v1/environments")) return o.placement.any();
    return null;
  }

  async function install(app: FastifyInstance): Promise<void> {
    await app.register(replyFrom, {
      undici: {
        headersTimeout: o.headersTimeoutMs ?? 15 * 60_000,
        // SSE streams idle between events (a keep-alive comment every 15 s): no body timeout.
        bodyTimeout: 0,
        // Not a fixed number per worker: one user's long-lived streams (SSE, /watch) would
        // take every connection to that worker and queue every other user's calls to it
        // behind them. Each forward is a client connection here, which this node caps.
        connections: null,
        // reply-from turns certificate checks off unless told: a worker on https is verified
        // (NODE_EXTRA_CA_CERTS for a private CA), or a man in the middle reads signed calls.
        connect: { rejectUnauthorized: true },
      },
      disableRequestLogging: true,
    });
    app.addHook("preParsing", async (request, reply, payload) => {
      const where = await route(request);
      if (where === null) return payload;
      if (where === "list") return listEverywhere(request, reply);
      if (where === "notebook") return findNotebook(request, reply);
      // Resolves when the worker's answer has been relayed; Fastify then stops here.
      return forward(request, reply, where, payload);
    });
    app.addHook("preHandler", async (request, reply) => {
      if (request.routeOptions.url !== "/mcp" || request.method !== "POST" || !request.actor)
        return;
      return forward(request, reply, await mcpWorker(request.body, request.actor));
    });
    if (o.routes) await o.routes(app);
  }

  /** MCP is stateless: a call naming a sandbox goes to its worker; others to the least loaded. */
  async function mcpWorker(body: unknown, actor: Actor): Promise<WorkerRow> {
    const { ids, creates } = mcpSandboxes(body);
    if (ids.length > 1)
      throw new WardenError(
        "INVALID_REQUEST",
        "body: one MCP request may name one sandbox_id (send a batch per sandbox)",
      );
    const [id] = ids;
    // A new sandbox counts against the user's cluster-wide limits, as POST /v1/sessions does.
    if (id === undefined)
      return creates ? o.placement.forNewSandbox(actor.userId) : o.placement.any();
    // A sandbox that is gone or not the caller's: any worker answers the tool's own "not found".
    return holderOf(id, actor).catch(() => o.placement.any());
  }

  return {
    install,
    relayUpgrade: async (raw, client, head, actor, sessionId) => {
      const worker = await holderOf(sessionId, actor);
      const { url, target } = targetAt(worker, raw.url ?? "/");
      if (!actor.key) throw new WardenError("UNAUTHORIZED", "missing API key");
      const principal = principalOf(actor.key, raw.socket.remoteAddress ?? "unknown", "upgrade");
      await relayUpgrade({
        raw,
        client,
        head,
        url,
        signed: signRequest(o.secret, raw.method ?? "GET", target, principal),
        workerId: worker.id,
      });
    },
  };
}
