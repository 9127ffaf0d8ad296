/**
 * E2B's code interpreter (the SDK's `runCode` and code contexts, sandbox port
 * 49999): `POST /execute` answers with NDJSON lines as the cell runs, and
 * `/contexts` makes, lists, restarts and removes code contexts. Cells go
 * through the same static-analysis policy and session manager as
 * `/v1/sessions/:id/run`: this file only translates.
 *
 * The SDK shows the body of a failed request only for 404 and 502 (else just
 * "<status> <statusText>"), so what is wrong with a cell (a policy refusal, a
 * limit, a gap) is said inside the stream, as an `error` line it puts in
 * `execution.error`.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import { CellCodeSchema, type ContextLanguage } from "../../contract/session.js";
import { WardenError } from "../../errors.js";
import type { OutputChunk } from "../../sandbox/types.js";
import { emptyBodyIsNoBody } from "../empty-body.js";
import { contextLanguageOf } from "../../sessions/languages.js";
import { checkCell } from "../../sessions/run-policy.js";
import type { CodeContextInfo } from "../../sessions/contexts.js";
import { openLineStream } from "./ndjson.js";
import {
  PlaneError,
  sandboxCall,
  toE2bPath,
  toWorkspacePath,
  type E2bDeps,
  type SandboxCall,
} from "./plane.js";
import { envVarsSchema } from "./api-schemas.js";
import { cellErrorLine, errorLine, resultLine } from "./results.js";

/** A cell (1 MiB) and its environment, JSON-escaped, with room to spare. */
const EXECUTE_BODY_BYTES = 8 * 1024 * 1024;
const SUPPORTED = "python, javascript (js), typescript (ts) and bash";

// Unknown fields are ignored (newer SDKs may send more); absent and null are the same.
const ExecuteSchema = z.object({
  code: CellCodeSchema,
  context_id: z.string().max(128).nullish(),
  language: z.string().max(64).nullish(),
  env_vars: envVarsSchema("env_vars").nullish(),
});

const CreateContextSchema = z.object({
  language: z.string().max(64).nullish(),
  cwd: z.string().max(4096).nullish(),
});

/** E2B's language names, normalised (js, ts, upper case...); null when Warden has no such context. */
function languageOf(name: string | null | undefined): ContextLanguage | null {
  return contextLanguageOf((name ?? "python").trim() || "python");
}

function unsupported(name: string | null | undefined): string {
  return `language ${String(name).slice(0, 64)} is not supported: Warden's code contexts are ${SUPPORTED}`;
}

/** A context as E2B shows it. */
function shown(c: CodeContextInfo): { id: string; language: string; cwd: string } {
  return { id: c.id, language: c.language, cwd: toE2bPath(c.cwd) };
}

/** An answer the SDK can show: plain text (its errors quote the body as is). */
function fail(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.status(status).type("text/plain; charset=utf-8").send(message);
}

/** A refusal before anything ran, as the SDK sees one (a paused sandbox is not running). */
function refuse(reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof PlaneError) return fail(reply, error.httpStatus, error.message);
  if (error instanceof WardenError && error.code === "SESSION_PAUSED")
    return fail(reply, 502, "sandbox is paused; Sandbox.connect(id) resumes it");
  if (error instanceof WardenError) return fail(reply, error.httpStatus, error.message);
  throw error;
}

const contextNotFound = (reply: FastifyReply, id: string): FastifyReply =>
  fail(reply, 404, `Context ${id.slice(0, 128)} not found`);

/**
 * Output pieces gathered into lines: the kernel's writes arrive as they were
 * made (`print` writes the text, then the newline), E2B's server sends the
 * line. A piece is held until a newline ends it, 64 KiB gather, the other
 * stream writes, or 20 ms pass.
 */
function lineGatherer(push: (line: object) => void) {
  let stream: "stdout" | "stderr" = "stdout";
  let text = "";
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (text) push({ type: stream, text, timestamp: new Date().toISOString() });
    text = "";
  };
  const add = (chunk: OutputChunk): void => {
    if (chunk.stream !== stream) flush();
    stream = chunk.stream;
    text += chunk.data;
    if (text.endsWith("\n") || text.length >= 64 * 1024) flush();
    else timer ??= setTimeout(flush, 20);
  };
  return { add, flush };
}

/** WARDEN_CODE as an error name: SESSION_PAUSED → SessionPaused. */
function errorName(code: string): string {
  return code
    .toLowerCase()
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("");
}

export async function interpreterRoutes(app: FastifyInstance, deps: E2bDeps): Promise<void> {
  const { sessions } = deps;
  // The SDK sends Content-Type: application/json on calls without a body too.
  // Hidden from OpenAPI: E2B's wire format, documented in docs/e2b.md.
  const opts = {
    config: { scope: "public" as const },
    schema: { hide: true },
    preParsing: emptyBodyIsNoBody,
  };
  /** A context id from the path (one too long for any context is simply not found). */
  const idOf = (params: unknown): string => {
    const id = (params as { id?: unknown }).id;
    return typeof id === "string" ? id : "";
  };

  /** A context of the session by id, or undefined. */
  const findContext = (call: SandboxCall, id: string): CodeContextInfo | undefined =>
    sessions.contexts(call.sessionId, call.userId).find((c) => c.id === id);

  app.post(
    "/execute",
    { config: { scope: "public" }, schema: { hide: true }, bodyLimit: EXECUTE_BODY_BYTES },
    async (request, reply) => {
      let call: SandboxCall;
      let context: CodeContextInfo | undefined;
      const parsed = ExecuteSchema.safeParse(request.body);
      try {
        call = sandboxCall(request, deps);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          return fail(reply, 400, `${issue?.path.join(".") || "body"}: ${issue?.message}`);
        }
        if (parsed.data.context_id) {
          context = findContext(call, parsed.data.context_id);
          if (!context) return contextNotFound(reply, parsed.data.context_id);
        }
      } catch (error) {
        return refuse(reply, error);
      }
      const body = parsed.data;
      const language = context?.language ?? languageOf(body.language);
      const stream = openLineStream(request, reply);
      const output = lineGatherer((line) => stream.push(line));
      const finish = async (error: ReturnType<typeof errorLine> | null): Promise<void> => {
        output.flush();
        if (error) await stream.write(error);
        await stream.write({ type: "end_of_execution" });
        stream.end();
      };
      if (!language) return finish(errorLine("NotSupported", unsupported(body.language)));
      // bash cells are framed by the shell itself: there is no place to set and restore a variable.
      if (language === "bash" && body.env_vars && Object.keys(body.env_vars).length > 0)
        return finish(
          errorLine("NotSupported", "env_vars: per-cell variables are not supported in bash cells"),
        );
      try {
        const check = await checkCell(
          deps,
          { userId: call.userId, policy: call.policy },
          call.sessionId,
          {
            code: body.code,
            language,
          },
        );
        if (check.rejected)
          return await finish(errorLine("MaliciousCode", check.rejected.error.message));
        const cell = await check.run({
          context: context?.id,
          env: body.env_vars ?? undefined,
          signal: stream.signal,
          onStart: (n) => stream.push({ type: "number_of_executions", execution_count: n }),
          onOutput: (chunk) => output.add(chunk),
        });
        output.flush();
        for (const r of cell.results) if (!(await stream.write(resultLine(r)))) return;
        return await finish(cellErrorLine(cell, deps.config.defaultTimeout));
      } catch (error) {
        const info =
          error instanceof WardenError
            ? errorLine(errorName(error.code), error.message)
            : errorLine("InternalError", "internal error");
        if (!(error instanceof WardenError)) request.log.error({ err: error }, "execute failed");
        return finish(info);
      }
    },
  );

  app.post("/contexts", opts, async (request, reply) => {
    try {
      const call = sandboxCall(request, deps);
      const parsed = CreateContextSchema.safeParse(request.body ?? {});
      if (!parsed.success) return fail(reply, 400, "body: language and cwd, strings");
      const language = languageOf(parsed.data.language);
      if (!language) return fail(reply, 404, unsupported(parsed.data.language));
      const cwd = toWorkspacePath(parsed.data.cwd ?? "/home/user");
      const made = await sessions.createContext(call.sessionId, call.userId, { language, cwd });
      return shown(made);
    } catch (error) {
      return refuse(reply, error);
    }
  });

  app.get("/contexts", opts, async (request, reply) => {
    try {
      const call = sandboxCall(request, deps);
      return sessions.contexts(call.sessionId, call.userId).map(shown);
    } catch (error) {
      return refuse(reply, error);
    }
  });

  app.post("/contexts/:id/restart", opts, async (request, reply) => {
    try {
      const call = sandboxCall(request, deps);
      const id = idOf(request.params);
      if (!findContext(call, id)) return contextNotFound(reply, id);
      await sessions.restartContext(call.sessionId, call.userId, id);
      return reply.status(204).send();
    } catch (error) {
      return refuse(reply, error);
    }
  });

  app.delete("/contexts/:id", opts, async (request, reply) => {
    try {
      const call = sandboxCall(request, deps);
      const id = idOf(request.params);
      if (!findContext(call, id)) return contextNotFound(reply, id);
      await sessions.closeContext(call.sessionId, call.userId, id);
      return reply.status(204).send();
    } catch (error) {
      return refuse(reply, error);
    }
  });
}
