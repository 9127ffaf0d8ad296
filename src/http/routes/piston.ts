/**
 * Piston-compatible API (v2): `GET /api/v2/runtimes`, `POST /api/v2/execute`
 * with Piston's request and response shapes, status letters and `{message}`
 * errors, so existing Piston clients work unchanged. Quirks of real clients
 * are honoured: piston-client sends JSON labelled text/plain, omits `version`
 * when given an alias, and passes -1 for "no memory limit". Requests are read in
 * piston-request.ts and run through runCode, like REST and MCP: the same
 * policy, scheduler, audit trail and kill on disconnect.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../../config/schema.js";
import { createExecutionSchemas, type CreateExecutionInput } from "../../executions/request.js";
import { runCode, type RunCodeOutcome } from "../../executions/run-code.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import { RunStatusSchema, type StepResult } from "../../contract/result.js";
import type { Analyzer } from "../../policy/analyzer.js";
import type { RuntimeRegistry } from "../../runtimes/registry.js";
import { statusOf, toWardenError } from "../errors.js";
import { boundedJsonParser } from "../json-body.js";
import { sendJson } from "../json-pieces.js";
import { clientGone, runActor } from "../run-request.js";
import { pistonInput, PistonRequestError } from "./piston-request.js";

interface PistonStage {
  stdout: string;
  stderr: string;
  output: string;
  code: number | null;
  signal: string | null;
  message: string | null;
  status: string | null;
  cpu_time: number | null;
  wall_time: number | null;
  memory: number | null;
}

/** Piston's status letters: RE exit, SG signal, TO time, OL/EL output, XX internal. */
export function letter(step: StepResult): string | null {
  switch (step.status) {
    case "completed":
      return null;
    case "failed":
    case "disk_limit":
      return step.signal ? "SG" : "RE";
    case "timeout":
      return "TO";
    case "output_limit":
      return step.truncated.stderr && !step.truncated.stdout ? "EL" : "OL";
    case "memory_limit":
    case "killed":
      return "SG";
    case "error":
      return "XX";
  }
}

export function message(step: StepResult): string | null {
  switch (step.status) {
    case "completed":
      return null;
    case "timeout":
      return "Time limit exceeded";
    case "output_limit":
      return step.truncated.stderr && !step.truncated.stdout
        ? "stderr length exceeded"
        : "stdout length exceeded";
    case "memory_limit":
      return "Memory limit exceeded";
    case "disk_limit":
      return "Disk limit exceeded";
    case "error":
      return "Internal error";
    case "killed":
      return "Killed";
    case "failed":
      return step.signal
        ? `Killed by signal ${step.signal}`
        : `Exited with error status ${step.exitCode}`;
  }
}

function stage(step: StepResult, output: string, metrics?: StepResult["metrics"]): PistonStage {
  const status = letter(step);
  return {
    stdout: step.stdout,
    stderr: step.stderr,
    output,
    code: step.exitCode,
    signal:
      step.signal ?? (status === "TO" || status === "OL" || status === "EL" ? "SIGKILL" : null),
    message: message(step),
    status,
    cpu_time: metrics ? metrics.cpuTimeMs : null,
    wall_time: metrics ? metrics.executionTimeMs : null,
    memory: metrics ? metrics.peakMemoryBytes : null,
  };
}

/** Piston versions are semver; accept "*", an exact version, a prefix ("3", "3.11") or an x-range ("3.x"). */
export function versionMatches(wanted: string, actual: string): boolean {
  const w = wanted.trim();
  if (w === "*" || w === "" || w === "x") return true;
  const parts = w.replace(/^[v=^~]/, "").split(".");
  const have = actual.split(".");
  return parts.every((p, i) => p === "x" || p === "*" || p === have[i]);
}

/** What can run here, in Piston's shape (a cluster API node asks its workers). */
export async function pistonRuntimes(
  service: ExecutionFrontend,
  registry: RuntimeRegistry,
): Promise<{ language: string; version: string; aliases: string[] }[]> {
  return (
    service.runtimes ? await service.runtimes() : (await registry.list()).filter((r) => r.available)
  ).map((r) => ({ language: r.language, version: r.version ?? "0.0.0", aliases: r.aliases }));
}

function fail(reply: FastifyReply, status: number, text: string): FastifyReply {
  return reply.status(status).send({ message: text });
}

export const pistonRoutes: FastifyPluginAsync<{
  service: ExecutionFrontend;
  registry: RuntimeRegistry;
  config: Config;
  /** Null on a cluster API node: the worker analyses (src/executions/run-code.ts). */
  analyzer: Analyzer | null;
}> = async (app, { service, registry, config, analyzer }) => {
  const { CreateExecutionSchema } = createExecutionSchemas(config);
  // Piston clients send JSON under any content type (piston-client: text/plain):
  // parsed like every JSON body, with the same depth and size bounds.
  const { maxJsonDepth, maxJsonKeys } = config.server.connections;
  app.addContentTypeParser(
    ["text/plain", "application/x-www-form-urlencoded"],
    { parseAs: "string" },
    boundedJsonParser(app.getDefaultJsonParser("error", "error"), {
      maxDepth: maxJsonDepth,
      maxKeys: maxJsonKeys,
    }),
  );
  // Errors in Piston's shape: {message}.
  app.setErrorHandler(async (error, _request, reply) => {
    const e = toWardenError(error);
    const retryAfter = e.details?.retryAfterSeconds;
    if (typeof retryAfter === "number") void reply.header("Retry-After", String(retryAfter));
    return reply.status(statusOf(e)).send({ message: e.message });
  });

  const runtimes = () => pistonRuntimes(service, registry);

  app.get(
    "/api/v2/runtimes",
    {
      config: { scope: "execute", anonymous: true },
      schema: { summary: "Piston: runtimes", tags: ["piston"] },
    },
    runtimes,
  );

  app.post(
    "/api/v2/execute",
    {
      config: { scope: "execute", anonymous: true },
      schema: { summary: "Piston: execute", tags: ["piston"] },
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const body = request.body as Record<string, unknown> | null;
      if (typeof body !== "object" || body === null || Array.isArray(body))
        return fail(reply, 400, "body must be a JSON object");
      const { language, version, files } = body;
      if (typeof language !== "string" || !language)
        return fail(reply, 400, "language is required as a string");
      if (version !== undefined && (typeof version !== "string" || !version))
        return fail(reply, 400, "version is required as a string");
      if (!Array.isArray(files)) return fail(reply, 400, "files is required as an array");
      const def = registry.lookup(language);
      const all = await runtimes();
      const runtime = def && all.find((r) => r.language === def.language);
      const wanted = version ?? "*";
      if (!runtime || !versionMatches(wanted, runtime.version))
        return fail(reply, 400, `${language}-${wanted} runtime is unknown`);
      let input: CreateExecutionInput;
      try {
        input = pistonInput(body, files, def, config);
      } catch (error) {
        if (error instanceof PistonRequestError) return fail(reply, 400, error.message);
        throw error;
      }
      // The same bounds as POST /v1/executions (stdin, args, file sizes...).
      const checked = CreateExecutionSchema.safeParse(input);
      if (!checked.success) {
        const issue = checked.error.issues[0]!;
        const where = issue.path.join(".");
        return fail(
          reply,
          400,
          issue.message.startsWith(where) ? issue.message : `${where}: ${issue.message}`,
        );
      }
      let outcome: RunCodeOutcome;
      try {
        outcome = await runCode({ service, analyzer }, checked.data, runActor(request.actor!), {
          source: "piston",
          signal: clientGone(reply),
        });
      } catch (error) {
        const e = toWardenError(error);
        const status =
          e.code === "INVALID_REQUEST" ||
          e.code === "UNSUPPORTED_LANGUAGE" ||
          e.code === "PERMISSION_DENIED"
            ? 400
            : statusOf(e);
        if (typeof e.details?.retryAfterSeconds === "number")
          void reply.header("Retry-After", String(e.details.retryAfterSeconds));
        return fail(reply, status, e.message);
      }
      // Block mode refuses here exactly as it does on REST (422) and MCP: same message, same findings.
      if (outcome.rejected)
        return reply
          .status(422)
          .send({ message: outcome.rejected.error!.message, findings: outcome.rejected.findings });
      const execution = outcome.execution;
      const result = await execution.done;
      if (
        result.status === "rejected" ||
        (result.status === "error" && !result.compile && result.exitCode === null && !result.stdout)
      )
        return fail(
          reply,
          result.error?.code === "SANDBOX_BUSY" ? 503 : 500,
          result.error?.message ?? "internal error",
        );
      const output = execution.chunks.map((c) => c.data).join("");
      const response: Record<string, unknown> = {};
      if (result.compile) {
        const compileOutput = result.compile.stdout + result.compile.stderr;
        response.compile = stage(result.compile, compileOutput, result.compile.metrics);
        if (result.compile.status !== "completed") {
          response.run = response.compile;
          return sendJson(reply, {
            ...response,
            language: runtime.language,
            version: runtime.version,
          });
        }
      }
      const run: StepResult = {
        ...result,
        // queued, running and rejected are not a run's end: never seen here, "error" if they were.
        status: RunStatusSchema.safeParse(result.status).data ?? "error",
      };
      response.run = stage(run, output, result.metrics);
      // Streamed: the answer holds the output up to three times (stdout, stderr, output).
      return sendJson(reply, { ...response, language: runtime.language, version: runtime.version });
    },
  );
};
