/**
 * `POST /v1/executions/batch`: several executions in one request, one id
 * each, none waited for.
 *
 * All or nothing at the door: every item is checked (schema, language,
 * files, limits, egress, delegation, callback URLs) before the first one is
 * submitted, and one bad item refuses the whole batch, naming it
 * (`items[3].limits.memoryMb: ...`). Past the door each item is submitted in
 * turn; one the scheduler or the policy refuses then (a full queue, code the
 * policy blocks, a language no worker has) is answered as `rejected` with its
 * error, and the items queued before it stay queued: nothing already
 * accepted is lost or undone.
 */
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Config } from "../../config/schema.js";
import { WardenError, toErrorInfo, type ErrorInfo } from "../../errors.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import {
  createExecutionSchemas,
  toExecutionRequest,
  type CreateExecutionInput,
} from "../../executions/request.js";
import { actingUser, runCode, type RunActor } from "../../executions/run-code.js";
import type { Analyzer } from "../../policy/analyzer.js";
import type { RuntimeRegistry } from "../../runtimes/registry.js";
import { ulid } from "../../util/ids.js";
import type { Webhooks } from "../../webhooks/types.js";
import { checkCallback, registerCallback } from "../callbacks.js";
import { runActor } from "../run-request.js";
import { ErrorInfoSchema, ErrorResponses } from "../schemas.js";

export interface BatchRouteOptions {
  service: ExecutionFrontend;
  registry: RuntimeRegistry;
  config: Config;
  analyzer: Analyzer | null;
  webhooks?: Webhooks | undefined;
}

const BatchItemResultSchema = z.object({
  id: z.string().nullable().describe("Null when the item was refused before it had an id."),
  status: z.enum(["queued", "rejected"]),
  error: ErrorInfoSchema.optional().describe("Why a rejected item was refused."),
});

/** Runs `check`, naming item `k` in the error it throws. */
function forItem<T>(k: number, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof WardenError)
      throw new WardenError(error.code, `items[${k}].${error.message}`, {
        details: { ...error.details, item: k },
      });
    throw error;
  }
}

/** What a submit would refuse, checked without submitting (environments are checked on submit). */
function precheck(o: BatchRouteOptions, item: CreateExecutionInput, actor: RunActor): void {
  actingUser(actor, item.userId);
  const def = o.registry.lookup(item.language);
  if (!def)
    throw new WardenError(
      "UNSUPPORTED_LANGUAGE",
      `language: "${item.language}" is not supported (GET /v1/runtimes)`,
    );
  const network = o.service.resolveNetwork(item.network, actor.networkAllow);
  toExecutionRequest(o.config, def, item, { network, environment: null }, actor, "api");
}

export function executionBatchRoute(app: FastifyInstance, o: BatchRouteOptions): void {
  const { CreateExecutionSchema } = createExecutionSchemas(o.config);
  const max = o.config.webhooks.maxBatchSize;
  const BatchSchema = z
    .object({
      items: z
        .array(CreateExecutionSchema)
        .min(1, "items: at least one")
        .max(max, `items: at most ${max} (webhooks.maxBatchSize)`)
        .describe("Executions as for POST /v1/executions; `wait` is ignored (never waited for)."),
      callbackUrl: z
        .string()
        .max(2048, "callbackUrl: at most 2048 characters")
        .optional()
        .describe("Callback for every item that names none itself (docs/webhooks.md)."),
    })
    .strict();

  app.withTypeProvider<ZodTypeProvider>().post(
    "/v1/executions/batch",
    {
      config: { scope: "execute" },
      schema: {
        summary: "Queue several executions at once",
        description:
          "Every item is checked first; one invalid item refuses the whole batch and nothing runs. Then each is queued in turn: one refused at that point (a full queue, the policy) is `rejected` with its error, the others stay queued. Fetch them with GET /v1/executions?ids=.",
        body: BatchSchema,
        response: {
          202: z.object({ batchId: z.string(), executions: z.array(BatchItemResultSchema) }),
          ...ErrorResponses,
        },
      },
    },
    async (request, reply) => {
      const actor = runActor(request.actor!);
      const { items } = request.body;
      // 1. Everything checked before anything runs (a URL once, however many items name it).
      const checked = new Map<string, string>();
      const callbackOf = async (url: string | undefined, field: string) => {
        if (url === undefined) return undefined;
        const seen = checked.get(url);
        if (seen !== undefined) return seen;
        const good = await checkCallback(o.webhooks, actor, url, field);
        checked.set(url, good);
        return good;
      };
      const batchUrl = await callbackOf(request.body.callbackUrl, "callbackUrl");
      const urls: (string | undefined)[] = [];
      for (const [k, item] of items.entries()) {
        forItem(k, () => precheck(o, item, actor));
        urls.push((await callbackOf(item.callbackUrl, `items[${k}].callbackUrl`)) ?? batchUrl);
      }
      // 2. Each in turn; a refusal now is this item's answer, never the batch's.
      const batchId = `batch_${ulid()}`;
      const executions: { id: string | null; status: "queued" | "rejected"; error?: ErrorInfo }[] =
        [];
      for (const [k, item] of items.entries()) {
        try {
          const outcome = await runCode(
            { service: o.service, analyzer: o.analyzer },
            { ...item, wait: false },
            actor,
            { source: "api" },
          );
          if (outcome.rejected) {
            const error = outcome.rejected.error ?? toErrorInfo(null);
            executions.push({ id: outcome.rejected.id, status: "rejected", error });
            continue;
          }
          const url = urls[k];
          if (url !== undefined)
            await registerCallback(o.webhooks!, o.service, outcome.execution, {
              url,
              actor,
              batchId,
            });
          executions.push({ id: outcome.execution.id, status: "queued" });
        } catch (error) {
          executions.push({ id: null, status: "rejected", error: toErrorInfo(error) });
        }
      }
      return reply.status(202).send({ batchId, executions });
    },
  );
}
