/** REST /v1: create (wait or async), get, stream (SSE), kill; runtimes. */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Config } from "../../config/schema.js";
import type { Execution } from "../../executions/execution.js";
import { createExecutionSchemas } from "../../executions/request.js";
import { runCode } from "../../executions/run-code.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import { WardenError } from "../../errors.js";
import type { Analyzer } from "../../policy/analyzer.js";
import { blankResult, type ExecutionResult } from "../../contract/result.js";
import { executionView } from "../../contract/execution-view.js";
import type { RuntimeRegistry } from "../../runtimes/registry.js";
import { hasScope, type Actor } from "../auth.js";
import { ArtifactListSchema, artifactListing, sendArtifact } from "../artifacts.js";
import { emptyBodyIsNoBody } from "../empty-body.js";
import { parsePosition, streamExecution } from "../execution-events.js";
import { sendJson } from "../json-pieces.js";
import { whenAnswered } from "../answered.js";
import { OutputBudget } from "../output-budget.js";
import { clientGone, runActor } from "../run-request.js";
import { lastEventId, openEventStream } from "../sse.js";
import { executionListRoute } from "./execution-list.js";
import { executionBatchRoute } from "./execution-batch.js";
import { checkCallback, registerCallback } from "../callbacks.js";
import type { Webhooks } from "../../webhooks/types.js";
import {
  AcceptedSchema,
  ErrorResponses,
  ExecutionResultSchema,
  ExecutionViewSchema,
  IdParamsSchema,
  RuntimeSchema,
} from "../schemas.js";

export interface ExecutionRoutesOptions {
  service: ExecutionFrontend;
  registry: RuntimeRegistry;
  config: Config;
  /** Null on a cluster API node: the worker analyses (src/executions/run-code.ts). */
  analyzer: Analyzer | null;
  /** Callbacks; absent: a request with `callbackUrl` is refused. */
  webhooks?: Webhooks | undefined;
}

const errors = ErrorResponses;

/** Owners see their executions; admins see all; everyone else gets NOT_FOUND (no existence leak). */
function visible(actor: Actor | null, userId: string): boolean {
  return actor !== null && (actor.userId === userId || hasScope(actor, "admin"));
}

export const executionRoutes: FastifyPluginAsyncZod<ExecutionRoutesOptions> = async (
  app,
  { service, registry, config, analyzer, webhooks },
) => {
  const { CreateExecutionSchema } = createExecutionSchemas(config);

  const outputBudget = new OutputBudget(
    config.server.connections.maxOutputInFlightMb * 1024 * 1024,
  );

  /**
   * The execution `actor` may see. Its stored output is loaded only `forReply`
   * (a GET or an event stream), from the output budget, given back when that
   * reply is done.
   */
  const find = async (
    id: string,
    actor: Actor | null,
    forReply?: { request: FastifyRequest; reply: FastifyReply },
    follow = false,
  ): Promise<{
    live?: Execution;
    userId: string;
    result: ExecutionResult | null;
    language: string;
    createdAt: string;
    startedAt: string | null;
    finishedAt: string | null;
    status: ExecutionResult["status"];
  }> => {
    const record = await service.getRecord(id, false);
    if (!record || !visible(actor, record.userId))
      throw new WardenError("NOT_FOUND", `execution ${id} not found`);
    // A cluster API node streams a run another node queued by following it (Redis).
    const live =
      service.live(id) ?? (follow && service.followAny ? await service.followAny(id) : undefined);
    // HEAD answers no body (Fastify drains the stream it is given): no output for it.
    if (forReply && forReply.request.method === "GET" && !live?.result && record.result) {
      const giveBack = outputBudget.take(
        actor?.key?.id ?? actor!.userId,
        await service.storedOutputBytes(id),
      );
      whenAnswered(forReply.request, forReply.reply, giveBack);
      record.result = await service.withStoredOutput(id, record.result);
    }
    return {
      ...(live ? { live } : {}),
      userId: record.userId,
      result: live?.result ?? record.result,
      language: record.language,
      createdAt: record.createdAt,
      startedAt: record.startedAt,
      finishedAt: record.finishedAt,
      status: live?.status ?? record.status,
    };
  };

  app.post(
    "/v1/executions",
    {
      config: { scope: "execute" },
      schema: {
        summary: "Run code once",
        description:
          "Runs code in a fresh sandbox. With wait=true (default) answers with the result; with wait=false answers 202 at once; follow /events or poll.",
        body: CreateExecutionSchema,
        response: {
          200: ExecutionResultSchema,
          202: AcceptedSchema,
          422: ExecutionResultSchema.describe(
            "Refused by the static-analysis policy (block): status rejected, MALICIOUS_CODE, the findings.",
          ),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const wait = request.body.wait;
      const actor = runActor(request.actor!);
      // Checked before anything is submitted: a refused callback runs nothing.
      const callbackUrl =
        request.body.callbackUrl === undefined
          ? undefined
          : await checkCallback(webhooks, actor, request.body.callbackUrl, "callbackUrl");
      const outcome = await runCode(
        { service, analyzer },
        request.body,
        actor,
        // A client that asked for 202 is not waiting: its hanging up kills nothing.
        { source: "api", signal: wait ? clientGone(reply) : undefined },
      );
      if (outcome.rejected) return reply.status(422).send(outcome.rejected);
      const { execution } = outcome;
      if (callbackUrl !== undefined)
        await registerCallback(webhooks!, service, execution, { url: callbackUrl, actor });
      const findings = outcome.findings ? { findings: outcome.findings } : {};
      if (!wait) {
        void reply.header("Location", `/v1/executions/${execution.id}`);
        return reply.status(202).send({ id: execution.id, status: "queued" as const, ...findings });
      }
      // Streamed like GET /:id: one result may hold four outputs at their byte limits.
      return sendJson(reply, { ...(await execution.done), ...findings });
    },
  );

  executionListRoute(app, service);
  executionBatchRoute(app, { service, registry, config, analyzer, webhooks });

  app.get(
    "/v1/executions/:id",
    {
      config: { scope: "execute" },
      schema: {
        summary: "An execution's state and, once final, its result",
        params: IdParamsSchema,
        response: { 200: ExecutionViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const found = await find(request.params.id, request.actor, { request, reply });
      const base =
        found.result ??
        blankResult(request.params.id, found.status, null, { retries: found.live?.retries ?? 0 });
      // Streamed: output escaped as JSON is up to 6× its bytes, never held whole.
      return sendJson(reply, executionView(base, found));
    },
  );

  app.post(
    "/v1/executions/:id/kill",
    {
      config: { scope: "execute" },
      preParsing: emptyBodyIsNoBody,
      schema: {
        summary: "Kill a queued or running execution",
        params: IdParamsSchema,
        response: { 200: z.object({ success: z.boolean(), status: z.string() }), ...errors },
      },
    },
    async (request) => {
      const found = await find(request.params.id, request.actor);
      const killed = await service.killExecution(
        request.params.id,
        `killed by ${request.actor!.userId}`,
      );
      const result = killed && found.live ? await found.live.done : null;
      return { success: killed, status: result?.status ?? found.status };
    },
  );

  app.get(
    "/v1/executions/:id/artifacts",
    {
      config: { scope: "execute" },
      schema: {
        summary: "The artifacts an execution left",
        params: IdParamsSchema,
        response: {
          200: ArtifactListSchema,
          ...errors,
        },
      },
    },
    async (request) => {
      await find(request.params.id, request.actor); // owner (or admin) only
      return artifactListing(await service.artifacts.list(request.params.id));
    },
  );

  app.get(
    "/v1/executions/:id/artifacts/*",
    {
      config: { scope: "execute" },
      schema: {
        summary: "Download an artifact",
        params: IdParamsSchema.extend({ "*": z.string().min(1).max(1024) }),
      },
    },
    async (request, reply) => {
      const { userId } = await find(request.params.id, request.actor);
      const artifact = await service.artifacts.open(
        request.params.id,
        request.params["*"],
        userId,
        true,
      );
      return sendArtifact(reply, artifact);
    },
  );

  app.get(
    "/v1/executions/:id/events",
    {
      config: { scope: "execute" },
      schema: {
        summary: "Stream an execution (Server-Sent Events)",
        description:
          "Events: `status` ({status}), `stdout` / `stderr` ({data}) as the program writes, then `result` (the result shape), then the stream ends. Each event has an `id:` (`<stdout chars>-<stderr chars>`, the output position it leaves the client at); reconnecting with `Last-Event-ID` resumes after it. A client that takes no bytes for 60 s is dropped; the run goes on.",
        params: IdParamsSchema,
      },
    },
    async (request, reply) => {
      const found = await find(request.params.id, request.actor, { request, reply }, true);
      const from = parsePosition(lastEventId(request));
      const stream = openEventStream(request, reply);
      await streamExecution(stream, from, found.live, found.result);
    },
  );

  app.get(
    "/v1/runtimes",
    {
      config: { scope: "any" },
      schema: {
        summary: "Languages runnable on this server, with versions",
        response: { 200: z.array(RuntimeSchema), ...errors },
      },
    },
    async () => {
      const runtimes = service.runtimes ? await service.runtimes() : await registry.available();
      // A cluster API node has no host of its own: workers do not report tiers yet.
      const isolation = service.tiers?.() ?? ["namespaces" as const];
      return runtimes.map((r) => ({ ...r, isolation }));
    },
  );
};
