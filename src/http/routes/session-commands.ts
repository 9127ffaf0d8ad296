/**
 * REST /v1/sessions/:id/commands and /run: commands (foreground or in the
 * background) and cells of the persistent code context. Foreground answers are
 * one JSON document, or Server-Sent Events when the client accepts
 * text/event-stream (stdout/stderr as they come, then `result`).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { toErrorInfo, WardenError } from "../../errors.js";
import type { OutputChunk } from "../../sandbox/types.js";
import { SIGNALS } from "../../sessions/commands.js";
import type { Config } from "../../config/schema.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import type { Analyzer } from "../../policy/analyzer.js";
import type { SessionManager } from "../../sessions/manager.js";
import { allowCommand, checkCell } from "../../sessions/run-policy.js";
import {
  BackgroundCommandSchema,
  CellCodeSchema,
  CellResultSchema,
  CommandLineSchema,
  CommandResultSchema,
  PolicyRefusalSchema,
} from "../../contract/session.js";
import { emptyBodyIsNoBody } from "../empty-body.js";
import { clientGone, runActor } from "../run-request.js";
import { ErrorResponses } from "../schemas.js";
import { openEventStream, wantsEventStream } from "../sse.js";
import { Params } from "./sessions.js";

const errors = ErrorResponses;
const CommandParams = Params.extend({
  commandId: z.string().regex(/^cmd_[0-9A-Z]{26}$/, "commandId: not a command id"),
});

const CommandSchema = z
  .object({
    command: CommandLineSchema,
    cwd: z.string().max(1024).optional().describe("Relative to /workspace."),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().max(32_768)).optional(),
    stdin: z
      .string()
      .max(1024 * 1024)
      .optional(),
    timeout: z
      .number()
      .positive()
      .optional()
      .describe("Seconds; the command, not the session. Not for background commands."),
    background: z
      .boolean()
      .default(false)
      .describe(
        "Answer 202 at once; the command runs until it ends, is killed or the session ends.",
      ),
  })
  .strict();

const STREAM_NOTE =
  " With `Accept: text/event-stream` the answer is a stream: `stdout` / `stderr` ({data}) as they come, then `result` (or `error`).";

export const sessionCommandRoutes: FastifyPluginAsyncZod<{
  sessions: SessionManager;
  /** Static analysis, the audit trail and the policy settings: code in a session obeys the key's policy. */
  analyzer: Analyzer;
  service: ExecutionFrontend;
  config: Config;
}> = async (app, { sessions, analyzer, service, config }) => {
  const deps = { sessions, analyzer, service, config };
  /**
   * Answers with the result, or streams the output and then the result. A
   * client that hangs up first stops the call (`gone`, taken when the request
   * arrived, so a hang-up while the code was analysed counts), not the session.
   */
  async function answer<T>(
    request: FastifyRequest,
    reply: FastifyReply,
    run: (signal: AbortSignal, onOutput?: (chunk: OutputChunk) => void) => Promise<T>,
    gone: AbortSignal = clientGone(reply),
  ): Promise<T | undefined> {
    if (!wantsEventStream(request)) return await run(gone);
    const stream = openEventStream(request, reply);
    try {
      const result = await run(gone, (chunk) => stream.send(chunk.stream, { data: chunk.data }));
      stream.send("result", result);
    } catch (error) {
      stream.send("error", toErrorInfo(error));
    }
    stream.end();
    return undefined;
  }

  app.post(
    "/v1/sessions/:id/commands",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "Run a command inside the session (foreground or background)",
        description: `Background commands answer 202 with their id. A raw command cannot be analysed: a key whose policy is block may run none (403 PERMISSION_DENIED) unless the server sets policy.sessionCommands to allow.${STREAM_NOTE}`,
        params: Params,
        body: CommandSchema,
        response: { 200: CommandResultSchema, 202: BackgroundCommandSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { background, command, ...options } = request.body;
      // Refused before anything starts, so a refusal is a plain 403, never a stream.
      const allowed = allowCommand(deps, runActor(request.actor!), id, command, background);
      if (background) {
        const started = allowed.start(options);
        void reply.header("Location", `/v1/sessions/${id}/commands/${started.id}`);
        return reply.status(202).send(started);
      }
      return answer(request, reply, (signal, onOutput) =>
        allowed.run({ ...options, onOutput, signal }),
      );
    },
  );

  app.get(
    "/v1/sessions/:id/commands",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "Background commands of the session",
        params: Params,
        response: { 200: z.array(BackgroundCommandSchema), ...errors },
      },
    },
    async (request) => sessions.listBackground(request.params.id, request.actor!.userId),
  );

  app.get(
    "/v1/sessions/:id/commands/:commandId",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "A background command with its output so far",
        params: CommandParams,
        response: {
          200: BackgroundCommandSchema.extend({ stdout: z.string(), stderr: z.string() }),
          ...errors,
        },
      },
    },
    async (request) =>
      sessions.getBackground(request.params.id, request.actor!.userId, request.params.commandId),
  );

  app.get(
    "/v1/sessions/:id/commands/:commandId/events",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "Stream a background command (Server-Sent Events)",
        description:
          "Its output from the start (`stdout` / `stderr`, {data}), live, then `result` (the command, ended) as the last event.",
        params: CommandParams,
      },
    },
    async (request, reply) => {
      const { id, commandId } = request.params;
      const userId = request.actor!.userId;
      sessions.getBackground(id, userId, commandId); // 404 before the stream opens
      const stream = openEventStream(request, reply);
      const stop = sessions.followBackground(id, userId, commandId, (event) => {
        if (event.type === "result") {
          stream.send("result", event.command);
          stream.end();
        } else stream.send(event.type, { data: event.data });
      });
      stream.onClose(stop);
    },
  );

  app.post(
    "/v1/sessions/:id/commands/:commandId/stdin",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "Send standard input to a background command",
        params: CommandParams,
        body: z
          .object({
            data: z
              .string()
              .max(1024 * 1024)
              .default(""),
            eof: z.boolean().default(false).describe("Close its standard input after the data."),
          })
          .strict(),
      },
    },
    async (request, reply) => {
      const { id, commandId } = request.params;
      const { data, eof } = request.body;
      await sessions.stdinBackground(id, request.actor!.userId, commandId, data, eof);
      return reply.status(204).send();
    },
  );

  const SignalSchema = z.enum(SIGNALS).describe("Default SIGTERM.");
  // Checked in the handler, not declared as the route's body: a declared body
  // is a required one in the OpenAPI document, and this route needs none.
  const KillBodySchema = z.object({ signal: SignalSchema.optional() }).strict().nullish();
  app.post(
    "/v1/sessions/:id/commands/:commandId/kill",
    {
      config: { scope: "sessions" },
      preParsing: emptyBodyIsNoBody,
      schema: {
        summary: "Signal a background command and everything it started",
        description:
          'Needs no body. The signal may come as `?signal=SIGKILL` or as a body `{"signal": "SIGKILL"}`; default SIGTERM.',
        params: CommandParams,
        querystring: z.object({ signal: SignalSchema.optional() }).strict(),
      },
    },
    async (request, reply) => {
      const { id, commandId } = request.params;
      const body = KillBodySchema.safeParse(request.body);
      if (!body.success)
        throw new WardenError(
          "INVALID_REQUEST",
          `body: send none, {} or {"signal": one of ${SIGNALS.join(", ")}}`,
        );
      const signal = body.data?.signal ?? request.query.signal ?? "SIGTERM";
      await sessions.signalBackground(id, request.actor!.userId, commandId, signal);
      return reply.status(204).send();
    },
  );

  app.post(
    "/v1/sessions/:id/run",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "Run code in the session's persistent context (python, javascript)",
        description: `State (variables, imports) carries over between calls. The last expression's value is the main result; matplotlib figures come back as image/png. Under the key's (or server's) static-analysis policy the cell is analysed first: audit returns \`findings\`; block refuses a high finding with 422 (status rejected, MALICIOUS_CODE), and nothing runs.${STREAM_NOTE}`,
        params: Params,
        body: z
          .object({
            code: CellCodeSchema,
            language: z
              .string()
              .max(32)
              .optional()
              .describe("python or javascript; default: the session's language."),
            timeout: z
              .number()
              .positive()
              .optional()
              .describe("Seconds; interrupts the cell, not the session."),
          })
          .strict(),
        response: { 200: CellResultSchema, 422: PolicyRefusalSchema, ...errors },
      },
    },
    async (request, reply) => {
      const gone = clientGone(reply);
      const { code, language, timeout } = request.body;
      const check = await checkCell(deps, runActor(request.actor!), request.params.id, {
        code,
        language,
      });
      if (check.rejected) return reply.status(422).send(check.rejected);
      return answer(
        request,
        reply,
        (signal, onOutput) => check.run({ timeout, onOutput, signal }),
        gone,
      );
    },
  );
};
