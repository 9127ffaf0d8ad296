/**
 * Judge0 CE's API: submissions (one, batch, wait, fields, base64), languages,
 * statuses, about, config_info, authenticate/authorize, with Judge0's shapes
 * and error bodies (`{"error": ...}`, 422 `{"field": [...]}`), so Judge0
 * clients work unchanged. A submission is a Warden execution run through
 * runCode like every other interface (policy, scheduler, audit, kill on
 * disconnect); its token is the execution id; what Judge0 reports that
 * Warden's record does not hold lives in `store.judge0`.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../../config/schema.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import type { Execution } from "../../executions/execution.js";
import { runCode } from "../../executions/run-code.js";
import { createExecutionSchemas } from "../../executions/request.js";
import type { Analyzer } from "../../policy/analyzer.js";
import type { RuntimeRegistry } from "../../runtimes/registry.js";
import type { Judge0Submission } from "../../store/judge0.js";
import type { Store } from "../../store/store.js";
import { iso } from "../../store/records.js";
import type { Webhooks } from "../../webhooks/types.js";
import { hasScope, type Actor } from "../auth.js";
import { registerCallback } from "../callbacks.js";
import { whenAnswered } from "../answered.js";
import { statusOf, toWardenError } from "../errors.js";
import { sendJson } from "../json-pieces.js";
import { OutputBudget } from "../output-budget.js";
import { clientGone, runActor } from "../run-request.js";
import { judge0Info } from "./info.js";
import { installedLanguages, type InstalledLanguage } from "./languages.js";
import {
  FieldsError,
  parseFields,
  renderSubmission,
  Utf8Error,
  type SubmissionField,
} from "./render.js";
import { parseSubmission, type FieldErrors, type ParsedSubmission } from "./request.js";
import { judge0Outcome } from "./statuses.js";

export interface Judge0RoutesOptions {
  service: ExecutionFrontend;
  registry: RuntimeRegistry;
  config: Config;
  analyzer: Analyzer | null;
  /** Its `judge0` sub-store holds the submissions (read when a request needs it). */
  store: Pick<Store, "judge0">;
  webhooks?: Webhooks | undefined;
  /** The copy at the root (judge0.atRoot): kept out of the OpenAPI document. */
  hidden?: boolean;
}

/** A refusal in Judge0's shape: `{"error": message}`. */
class Judge0Error extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const flag = (q: unknown, name: string): boolean =>
  (q as Record<string, unknown> | undefined)?.[name] === "true";

export const judge0Routes: FastifyPluginAsync<Judge0RoutesOptions> = async (app, o) => {
  const { service, registry, config, analyzer, webhooks } = o;
  const store = {
    save: (s: Judge0Submission) => o.store.judge0.save(s),
    get: (token: string) => o.store.judge0.get(token),
    getMany: (tokens: string[]) => o.store.judge0.getMany(tokens),
  };
  const { CreateExecutionSchema } = createExecutionSchemas(config);
  const budget = new OutputBudget(config.server.connections.maxOutputInFlightMb * 1024 * 1024);
  const route = (scope: "execute" | "any" | "admin", operationId: string, summary: string) => ({
    config: { scope, judge0: true },
    schema: { tags: ["judge0"], hide: o.hidden === true, operationId, summary },
  });

  app.setErrorHandler(async (error, _request, reply) => {
    if (error instanceof Judge0Error)
      return reply.status(error.status).send({ error: error.message });
    const e = toWardenError(error);
    const retryAfter = e.details?.retryAfterSeconds;
    if (typeof retryAfter === "number") void reply.header("Retry-After", String(retryAfter));
    return reply.status(statusOf(e)).send({ error: e.message });
  });

  const languages = async (): Promise<Map<number, InstalledLanguage>> =>
    new Map((await installedLanguages(registry, service)).map((l) => [l.id, l]));
  const fieldsOf = (request: FastifyRequest): readonly SubmissionField[] => {
    try {
      return parseFields((request.query as Record<string, unknown>).fields);
    } catch (e) {
      if (e instanceof FieldsError) throw new Judge0Error(400, e.message);
      throw e;
    }
  };
  /** The submission `actor` may see; others' are as absent as unknown ones (no existence leak). */
  const visible = (s: Judge0Submission | null, actor: Actor | null): s is Judge0Submission =>
    s !== null && actor !== null && (s.userId === actor.userId || hasScope(actor, "admin"));

  /** A submission's view; stored output is loaded from the output budget until the reply ends. */
  const view = async (
    s: Judge0Submission,
    names: Map<number, InstalledLanguage>,
    request: FastifyRequest,
    reply: FastifyReply,
    fields: readonly SubmissionField[],
    base64: boolean,
    /** The execution this request waited for: its result, whether or not its record is written yet. */
    waited?: Execution,
  ): Promise<Record<string, unknown>> => {
    const record = await service.getRecord(s.token, false);
    const live = waited ?? service.live(s.token);
    let result = live?.result ?? record?.result ?? null;
    const status = live?.status ?? record?.status ?? "error";
    if (result && !live?.result && record?.result) {
      const giveBack = budget.take(
        request.actor?.key?.id ?? s.userId,
        await service.storedOutputBytes(s.token),
      );
      whenAnswered(request, reply, giveBack);
      result = await service.withStoredOutput(s.token, record.result);
    }
    const f = s.fields;
    return renderSubmission(
      {
        submission: s,
        languageName: names.get(s.languageId)?.name ?? "unknown",
        outcome: judge0Outcome(status, result, {
          expectedOutput: f.expected_output,
          cpuTimeLimit: f.cpu_time_limit,
          redirectStderrToStdout: f.redirect_stderr_to_stdout,
        }),
        createdAt: record?.createdAt ?? new Date(s.createdAt).toISOString(),
        startedAt: record?.startedAt ?? iso(waited?.startedAt ?? null),
        finishedAt: record?.finishedAt ?? iso(waited?.finishedAt ?? null),
      },
      fields,
      base64,
    );
  };

  /** Runs one checked submission; its row is saved before anyone can ask for its token. */
  const submit = async (
    parsed: ParsedSubmission,
    request: FastifyRequest,
    wait: boolean,
    reply: FastifyReply,
  ) => {
    const actor = request.actor!;
    // The same bounds as POST /v1/executions, whatever the translation produced.
    const input = CreateExecutionSchema.safeParse(parsed.input);
    if (!input.success) {
      const issue = input.error.issues[0]!;
      return { refused: { [String(issue.path[0] ?? "submission")]: [issue.message] } };
    }
    const outcome = await runCode({ service, analyzer }, input.data, runActor(actor), {
      source: "judge0",
      signal: wait ? clientGone(reply) : undefined,
    });
    if (outcome.rejected) return { refused: { source_code: [outcome.rejected.error!.message] } };
    const execution = outcome.execution;
    const submission: Judge0Submission = {
      token: execution.id,
      userId: actor.userId,
      languageId: parsed.languageId,
      createdAt: Date.now(),
      fields: parsed.fields,
    };
    try {
      await store.save(submission);
    } catch (error) {
      // Unreachable by its token: it must not run for nobody.
      await service.killExecution(execution.id, "judge0 submission could not be stored");
      throw error;
    }
    if (parsed.fields.callback_url && webhooks)
      await registerCallback(webhooks, service, execution, {
        url: parsed.fields.callback_url,
        actor: runActor(actor),
        format: "judge0",
      });
    return { execution, submission };
  };

  /** A refusal from the engine's own checks, as Judge0's 422 naming the field. */
  const refusal = (error: unknown): FieldErrors | null => {
    const e = toWardenError(error);
    if (
      e.code !== "INVALID_REQUEST" &&
      e.code !== "UNSUPPORTED_LANGUAGE" &&
      e.code !== "PERMISSION_DENIED"
    )
      return null;
    const field = typeof e.details?.field === "string" ? e.details.field : "submission";
    return { [field]: [e.message] };
  };

  app.post(
    "/submissions",
    route("execute", "judge0CreateSubmission", "Judge0: create a submission"),
    async (request, reply) => {
      const base64 = flag(request.query, "base64_encoded");
      const wait = flag(request.query, "wait");
      const fields = fieldsOf(request);
      const names = await languages();
      const parsed = await parseSubmission(request.body, {
        config,
        base64,
        installed: names,
        webhooks,
        keyId: request.actor?.key?.id,
      });
      if (!parsed.ok) return reply.status(422).send(parsed.errors);
      let done;
      try {
        done = await submit(parsed.value, request, wait, reply);
      } catch (error) {
        const fieldErrors = refusal(error);
        if (fieldErrors) return reply.status(422).send(fieldErrors);
        throw error;
      }
      if ("refused" in done) return reply.status(422).send(done.refused);
      if (!wait) return reply.status(201).send({ token: done.submission.token });
      await done.execution.done;
      try {
        const body = await view(
          done.submission,
          names,
          request,
          reply,
          fields,
          base64,
          done.execution,
        );
        return sendJson(reply.status(201), body);
      } catch (e) {
        if (e instanceof Utf8Error)
          return reply.status(201).send({ token: done.submission.token, error: e.message });
        throw e;
      }
    },
  );

  app.post(
    "/submissions/batch",
    route("execute", "judge0CreateBatch", "Judge0: create a batch"),
    async (request, reply) => {
      const base64 = flag(request.query, "base64_encoded");
      const body = request.body as { submissions?: unknown } | null;
      const items = body && typeof body === "object" ? body.submissions : undefined;
      const max = config.judge0.maxBatchSize;
      if (!Array.isArray(items) || items.length === 0)
        throw new Judge0Error(400, "there should be at least one submission in a batch");
      if (items.length > max)
        throw new Judge0Error(
          400,
          `number of submissions in a batch should be less than or equal to ${max}`,
        );
      const names = await languages();
      // Every item is checked before any runs: a batch's refusals cost nothing.
      const parsed = await Promise.all(
        items.map((item) =>
          parseSubmission(item, {
            config,
            base64,
            installed: names,
            webhooks,
            keyId: request.actor?.key?.id,
          }),
        ),
      );
      const answer: unknown[] = [];
      let created = false;
      for (const p of parsed) {
        if (!p.ok) {
          answer.push(p.errors);
          continue;
        }
        try {
          const done = await submit(p.value, request, false, reply);
          if ("refused" in done) answer.push(done.refused);
          else {
            answer.push({ token: done.submission.token });
            created = true;
          }
        } catch (error) {
          const fieldErrors = refusal(error);
          if (!fieldErrors) throw error;
          answer.push(fieldErrors);
        }
      }
      return reply.status(created ? 201 : 422).send(answer);
    },
  );

  app.get(
    "/submissions/batch",
    route("execute", "judge0GetBatch", "Judge0: get a batch by tokens"),
    async (request, reply) => {
      const base64 = flag(request.query, "base64_encoded");
      const fields = fieldsOf(request);
      const raw = (request.query as Record<string, unknown>).tokens;
      const max = config.judge0.maxBatchSize;
      if (raw !== undefined && typeof raw !== "string")
        throw new Judge0Error(400, "tokens must be given once, comma-separated");
      // Bounded before splitting: a token is an execution id (about 30 characters).
      if ((raw ?? "").length > max * 64)
        throw new Judge0Error(
          400,
          `number of submissions in a batch should be less than or equal to ${max}`,
        );
      const tokens = (raw ?? "")
        .trim()
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t !== "");
      if (tokens.length === 0)
        throw new Judge0Error(400, "there should be at least one submission in a batch");
      if (tokens.length > max)
        throw new Judge0Error(
          400,
          `number of submissions in a batch should be less than or equal to ${max}`,
        );
      const found = new Map((await store.getMany([...new Set(tokens)])).map((s) => [s.token, s]));
      const names = await languages();
      const submissions: unknown[] = [];
      try {
        for (const token of tokens) {
          const s = found.get(token) ?? null;
          submissions.push(
            visible(s, request.actor) ? await view(s, names, request, reply, fields, base64) : null,
          );
        }
      } catch (e) {
        if (e instanceof Utf8Error)
          throw new Judge0Error(
            400,
            "some attributes for one or more submissions cannot be converted to UTF-8, use base64_encoded=true query parameter",
          );
        throw e;
      }
      return sendJson(reply, { submissions });
    },
  );

  app.get<{ Params: { token: string } }>(
    "/submissions/:token",
    route("execute", "judge0GetSubmission", "Judge0: get a submission"),
    async (request, reply) => {
      const base64 = flag(request.query, "base64_encoded");
      const fields = fieldsOf(request);
      const token = request.params.token;
      const s = token.length <= 128 ? await store.get(token) : null;
      if (!visible(s, request.actor)) throw new Judge0Error(404, "submission not found");
      try {
        return sendJson(reply, await view(s, await languages(), request, reply, fields, base64));
      } catch (e) {
        if (e instanceof Utf8Error) throw new Judge0Error(400, e.message);
        throw e;
      }
    },
  );

  await judge0Info(app, { route, languages, config, callbacks: webhooks !== undefined });
};
