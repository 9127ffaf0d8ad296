/**
 * E2B's control API (/v2/sandboxes...) on the session manager: a sandbox is a
 * session, its id the session's ULID in lower case. Keyed by X-API-KEY (the
 * Gate's `e2b` option); every error answers in E2B's `{code, message}`, which
 * the SDK maps to its own classes (401 AuthenticationError, 429
 * RateLimitError, 404 SandboxNotFoundError...). Calls E2B has and Warden does
 * not answer 501 naming the call.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { WardenError } from "../../errors.js";
import { resolveKeyEgress } from "../../network/policy.js";
import { emptyBodyIsNoBody } from "../empty-body.js";
import { statusOf, toWardenError } from "../errors.js";
import {
  ConnectSandboxSchema,
  CreateSandboxSchema,
  ListQuerySchema,
  MetricsQuerySchema,
  parseMetadataFilter,
  PauseSchema,
  SandboxParams,
  TimeoutSchema,
} from "./api-schemas.js";
import { refuseGaps, sandboxAnswer, sandboxView, templateEnvironment } from "./api-views.js";
import { PlaneError, sandboxCall, toE2bId, toSessionId, type E2bDeps } from "./plane.js";
import { hostRoutes } from "./host-routing.js";
import { unsupportedRoutes } from "./unsupported.js";

/** Any error as E2B's body; PlaneErrors keep their status. No stack, no internals. */
export async function e2bError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  if (error instanceof PlaneError)
    return void reply
      .status(error.httpStatus)
      .send({ code: error.httpStatus, message: error.message });
  const e = toWardenError(error);
  if (e.code === "INTERNAL") request.log.error({ err: error }, "e2b request failed");
  const retryAfter = e.details?.retryAfterSeconds;
  if (typeof retryAfter === "number") void reply.header("Retry-After", String(retryAfter));
  const status = statusOf(e);
  await reply.status(status).send({ code: status, message: e.message });
}

/** A sandbox id from a path; unknown forms are as absent as unknown sandboxes. */
function sessionOf(id: string): string {
  const sid = toSessionId(id);
  if (!sid) throw new WardenError("NOT_FOUND", `sandbox ${id.slice(0, 64)} not found`);
  return sid;
}

const MiB = 1024 * 1024;

export async function apiRoutes(root: FastifyInstance, deps: E2bDeps): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const { sessions, config } = deps;
  // For every /e2b route: the Gate's refusals (raised in its onRequest hook) land here too.
  app.setErrorHandler(e2bError);
  const keyed = { scope: "sessions" as const, e2b: true };
  // Clients send `Content-Type: application/json` with no body on calls that need none.
  const preParsing = emptyBodyIsNoBody;
  const me = (request: FastifyRequest): string => request.actor!.userId;

  const create = async (
    request: FastifyRequest<{ Body: z.infer<typeof CreateSandboxSchema> }>,
    reply: FastifyReply,
  ) => {
    const body = request.body;
    refuseGaps(body, config);
    const environment = templateEnvironment(body.templateID, config, sessions.environments);
    const actor = request.actor!;
    const allowOut = body.network?.allowOut ?? [];
    const network = resolveKeyEgress(
      allowOut.length > 0 ? { allow: allowOut } : undefined,
      config.network,
      actor.key?.networkAllow,
    );
    const info = await sessions.create(
      actor.userId,
      {
        timeout: body.timeout,
        // E2B sandboxes end at their timeout only: no idle end before it.
        idleTimeout: config.maxSessionTimeout,
        metadata: body.metadata ?? undefined,
        env: body.envVars ?? undefined,
        environment,
        network,
        // E2B has no tier field: the key decides (a key forced to gvisor gets it here too).
        keyIsolation: actor.key,
      },
      actor.key?.id ?? null,
    );
    deps.sandboxes.created(info.id, body.templateID, actor.key?.policy);
    return reply.status(201).send(sandboxAnswer(info, body.templateID, deps, request));
  };
  for (const url of ["/v2/sandboxes", "/sandboxes"])
    app.post(url, { config: keyed, schema: { hide: true, body: CreateSandboxSchema } }, create);

  /** Connect: a paused sandbox is resumed, then its timeout extended (never shortened). */
  const connect = async (
    request: FastifyRequest<{ Params: { id: string }; Body: { timeout?: number | undefined } }>,
    reply: FastifyReply,
  ) => {
    const id = sessionOf(request.params.id);
    let info = sessions.get(id, me(request));
    if (info.state === "released")
      throw new WardenError(
        "SESSION_PAUSED",
        `sandbox was released to snapshot ${info.snapshotId ?? "(none kept)"} after sessions.pausedSnapshotAfter; create a new one from it`,
      );
    // This key's code obeys its own policy from now on, if stricter than the creator's.
    deps.sandboxes.connected(id, request.actor!.key?.policy);
    const resumed = info.state === "paused";
    if (resumed) info = await sessions.resume(id, me(request));
    const timeout = request.body?.timeout;
    if (timeout !== undefined) {
      // E2B's connect never fails on a long timeout: clamp to the session's longest life.
      const latest = Date.parse(info.createdAt) + config.maxSessionTimeout * 1000;
      const seconds = Math.min(timeout, Math.floor((latest - Date.now()) / 1000));
      if (seconds > 0) info = sessions.extend(id, me(request), seconds);
    }
    const answer = sandboxAnswer(info, deps.sandboxes.template(id), deps, request);
    return reply.status(resumed ? 201 : 200).send(answer);
  };
  const ConnectBody = ConnectSandboxSchema.optional();
  for (const url of ["/v2/sandboxes/:id/connect", "/sandboxes/:id/connect"])
    app.post(
      url,
      { config: keyed, schema: { hide: true, params: SandboxParams, body: ConnectBody } },
      connect,
    );
  const ResumeBody = z
    .object({ timeout: z.number().int().positive().optional(), autoPause: z.boolean().optional() })
    .strict()
    .optional();
  app.post(
    "/sandboxes/:id/resume",
    { config: keyed, schema: { hide: true, params: SandboxParams, body: ResumeBody } },
    connect,
  );

  const list = async (
    request: FastifyRequest<{ Querystring: z.infer<typeof ListQuerySchema> }>,
    reply: FastifyReply,
  ) => {
    const q = request.query;
    const filter = parseMetadataFilter(q.metadata);
    if (typeof filter === "string") throw new WardenError("INVALID_REQUEST", filter);
    const after = q.startedAfter ? Date.parse(q.startedAfter) : NaN;
    // Only the caller's own sandboxes, admin key or not: an E2B key is one team.
    const all = sessions
      .list(me(request))
      .map((s) => sandboxView(s, deps.sandboxes.template(s.id)))
      .filter(
        (v) =>
          (q.state as string[]).includes(v.state) &&
          Object.entries(filter).every(([k, val]) => v.metadata[k] === val) &&
          (!q.template || v.templateID === q.template) &&
          (Number.isNaN(after) || Date.parse(v.startedAt) > after),
      )
      .sort((a, b) => (q.order === "asc" ? 1 : -1) * a.startedAt.localeCompare(b.startedAt));
    const from = Number(q.nextToken ?? 0);
    const page = q.limit ? all.slice(from, from + q.limit) : all.slice(from);
    if (q.limit && from + q.limit < all.length)
      void reply.header("x-next-token", String(from + q.limit));
    return page;
  };
  for (const url of ["/v2/sandboxes", "/sandboxes"])
    app.get(url, { config: keyed, schema: { hide: true, querystring: ListQuerySchema } }, list);

  app.get(
    "/sandboxes/:id",
    { config: keyed, preParsing, schema: { hide: true, params: SandboxParams } },
    async (request) => {
      const id = sessionOf(request.params.id);
      const info = sessions.get(id, me(request));
      return {
        ...sandboxView(info, deps.sandboxes.template(id)),
        ...sandboxAnswer(info, deps.sandboxes.template(id), deps, request),
      };
    },
  );

  app.post(
    "/sandboxes/:id/timeout",
    {
      config: keyed,
      preParsing,
      schema: { hide: true, params: SandboxParams, body: TimeoutSchema },
    },
    async (request, reply) => {
      sessions.setExpiry(sessionOf(request.params.id), me(request), request.body.timeout);
      return reply.status(204).send();
    },
  );

  app.delete(
    "/sandboxes/:id",
    { config: keyed, preParsing, schema: { hide: true, params: SandboxParams } },
    async (request, reply) => {
      await sessions.destroy(sessionOf(request.params.id), me(request), "killed through E2B's API");
      return reply.status(204).send();
    },
  );

  app.post(
    "/sandboxes/:id/pause",
    {
      config: keyed,
      preParsing,
      schema: { hide: true, params: SandboxParams, body: PauseSchema.optional() },
    },
    async (request, reply) => {
      const id = sessionOf(request.params.id);
      // The SDK reads 409 as "already paused" (pause() answers false).
      if (sessions.get(id, me(request)).state !== "running")
        return reply
          .status(409)
          .send({ code: 409, message: `sandbox ${toE2bId(id)} is already paused` });
      await sessions.pause(id, me(request));
      return reply.status(204).send();
    },
  );

  app.get(
    "/sandboxes/:id/metrics",
    {
      config: keyed,
      schema: { hide: true, params: SandboxParams, querystring: MetricsQuerySchema },
    },
    async (request) => {
      const id = sessionOf(request.params.id);
      const info = sessions.get(id, me(request));
      if (info.state === "released") return [];
      const usage = await sessions.usage(id, me(request));
      const now = Date.now();
      const cpuCount = Math.max(1, Math.ceil(info.limits.cpuPercent / 100));
      // One sample: CPU as the average over the sandbox's life so far.
      const lifeMs = Math.max(1, now - Date.parse(info.createdAt));
      const cpuUsedPct = Math.min(100, (usage.cpuTimeMs / lifeMs / cpuCount) * 100);
      return [
        {
          timestamp: new Date(now).toISOString(),
          timestampUnix: Math.floor(now / 1000),
          cpuCount,
          cpuUsedPct: Math.round(cpuUsedPct * 100) / 100,
          memUsed: usage.memoryBytes,
          memTotal: info.limits.memoryMb * MiB,
          memCache: 0,
          diskUsed: 0,
          diskTotal: info.limits.diskMb * MiB,
        },
      ];
    },
  );

  /** envd's health: 204 while the sandbox exists (running or paused), 502 once it is gone. */
  app.get(
    "/health",
    { config: { scope: "public" }, schema: { hide: true } },
    async (request, reply) => {
      try {
        const call = sandboxCall(request, deps);
        if (sessions.get(call.sessionId, call.userId).state === "released")
          return reply
            .status(502)
            .send({ code: 502, message: `sandbox ${call.e2bId} is not running` });
      } catch (error) {
        const gone =
          (error instanceof PlaneError && error.httpStatus === 502) ||
          (error instanceof WardenError && error.code === "NOT_FOUND");
        if (gone) return reply.status(502).send({ code: 502, message: "sandbox is not running" });
        throw error;
      }
      return reply.status(204).send();
    },
  );

  unsupportedRoutes(app);
  await hostRoutes(root, deps);
}
