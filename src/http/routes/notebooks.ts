/**
 * REST /v1/notebooks (upload as multipart or JSON, run, download as .ipynb)
 * and /v1/analyze (static analysis of code on its own).
 */
import { IsolationSchema, type Isolation } from "../../contract/isolation.js";
import { EnvironmentNameSchema } from "../../contract/environment.js";
import multipart from "@fastify/multipart";
import type { FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Config } from "../../config/schema.js";
import { WardenError } from "../../errors.js";
import type { Analyzer } from "../../policy/analyzer.js";
import { AnalysisReportSchema, FindingSchema } from "../../contract/policy.js";
import { NOTEBOOK_ID, type NotebookService, type Upload } from "../../notebooks/service.js";
import { hasScope } from "../auth.js";
import { ErrorBodySchema, ErrorResponses, ErrorInfoSchema } from "../schemas.js";

export interface NotebookRoutesOptions {
  notebooks: NotebookService;
  analyzer: Analyzer;
  config: Config;
}

const errors = { ...ErrorResponses, 413: ErrorBodySchema };

const RunSchema = z.object({
  id: z.string(),
  status: z.enum(["completed", "failed", "rejected"]),
  userId: z.string(),
  createdAt: z.string(),
  notebook: z.record(z.string(), z.unknown()).describe("The executed notebook (nbformat 4.5)."),
  summary: z.object({
    cellsRun: z.number(),
    cellsFailed: z.number(),
    cellsSkipped: z.number(),
    durationMs: z.number(),
    findings: z.array(FindingSchema),
    analysisComplete: z.boolean(),
    policy: z.enum(["off", "audit", "block"]),
  }),
  error: ErrorInfoSchema.nullable(),
  download: z.string().describe("Where to fetch the executed notebook as .ipynb."),
});

const Params = z.object({ id: z.string().regex(NOTEBOOK_ID, "id: not a notebook id") });

export const notebookRoutes: FastifyPluginAsyncZod<NotebookRoutesOptions> = async (
  app,
  { notebooks, analyzer, config },
) => {
  const maxBytes = config.notebooks.maxBytes;
  // JSON escaping can double a file's size; the notebook itself is checked against maxBytes.
  const bodyLimit = maxBytes * 2 + 64 * 1024;
  await app.register(multipart, {
    limits: { fileSize: maxBytes, files: 1, fields: 10, fieldSize: 1024, parts: 12 },
  });

  const JsonUpload = z.union([
    z.strictObject({
      notebook: z.record(z.string(), z.unknown(), { error: "notebook: must be an object" }),
      stopOnError: z.boolean().optional(),
      cellTimeout: z.number().positive().optional(),
      environment: EnvironmentNameSchema.optional(),
      isolation: IsolationSchema.optional(),
    }),
    z.strictObject({
      filename: z.string().min(1).max(255),
      content: z.string(),
      stopOnError: z.boolean().optional(),
      cellTimeout: z.number().positive().optional(),
      environment: EnvironmentNameSchema.optional(),
      isolation: IsolationSchema.optional(),
    }),
  ]);

  /** The upload from a multipart `file` field or a JSON body, with its run options. */
  const readUpload = async (
    request: FastifyRequest,
  ): Promise<{
    upload: Upload;
    stopOnError?: boolean;
    cellTimeout?: number;
    environment?: string;
    isolation?: Isolation;
  }> => {
    if (request.isMultipart()) {
      // A broken multipart body (no boundary, cut short) is the client's error, not ours.
      const malformed = (error: unknown): never => {
        if ((error as { code?: string }).code === "FST_REQ_FILE_TOO_LARGE") throw error;
        throw new WardenError("INVALID_REQUEST", "body: not a valid multipart/form-data body");
      };
      const file = await request.file().catch(malformed);
      if (!file)
        throw new WardenError("INVALID_REQUEST", "file: send the notebook in a field named file");
      const content = await file.toBuffer().catch((error: unknown) => {
        if ((error as { code?: string }).code === "FST_REQ_FILE_TOO_LARGE")
          throw new WardenError(
            "INVALID_REQUEST",
            `file: larger than the limit of ${maxBytes} bytes (notebooks.maxBytes)`,
            { details: { httpStatus: 413 } },
          );
        return malformed(error);
      });
      return { upload: { filename: file.filename, content } };
    }
    const parsed = JsonUpload.safeParse(request.body);
    if (!parsed.success)
      throw new WardenError(
        "INVALID_REQUEST",
        "body: send {notebook: {...}} or {filename, content} as JSON, or the file as multipart field `file`",
      );
    const { stopOnError, cellTimeout, environment, isolation, ...upload } = parsed.data;
    return {
      upload,
      ...(isolation === undefined ? {} : { isolation }),
      ...(environment === undefined ? {} : { environment }),
      ...(stopOnError === undefined ? {} : { stopOnError }),
      ...(cellTimeout === undefined ? {} : { cellTimeout }),
    };
  };

  app.post(
    "/v1/notebooks",
    {
      config: { scope: "execute" },
      bodyLimit,
      // Refused on the declared length, before a byte of an oversized body is read.
      onRequest: async (request) => {
        const declared = Number(request.headers["content-length"] ?? 0);
        if (declared > bodyLimit)
          throw new WardenError(
            "INVALID_REQUEST",
            `body: ${declared} bytes exceed the limit of ${maxBytes} bytes per notebook (notebooks.maxBytes)`,
            { details: { httpStatus: 413 } },
          );
      },
      schema: {
        summary: "Upload a notebook (.ipynb or .py), analyse it, run it in a fresh session",
        description:
          "Multipart (field `file`; options in the query) or JSON `{notebook}` / `{filename, content}` with `stopOnError`, `cellTimeout`. Answers with the executed notebook and a summary; 422 when the policy blocks it.",
        querystring: z.strictObject({
          stopOnError: z.enum(["true", "false"]).optional().describe("Default true."),
          cellTimeout: z.coerce.number().positive().optional().describe("Seconds per cell."),
          environment: EnvironmentNameSchema.optional(),
          isolation: IsolationSchema.optional().describe(
            "Isolation tier of the notebook's session; default: the key's, else the server's.",
          ),
        }),
        response: { 200: RunSchema, 422: RunSchema, ...errors },
      },
    },
    async (request, reply) => {
      const actor = request.actor!;
      const { upload, ...options } = await readUpload(request);
      const notebook = notebooks.read(upload);
      const query = request.query;
      // A client that hangs up before its answer does not leave its notebook running.
      const hangUp = new AbortController();
      const onClose = (): void => {
        if (!reply.raw.writableFinished) hangUp.abort();
      };
      reply.raw.on("close", onClose);
      const run = await notebooks.run(
        notebook,
        { userId: actor.userId, policy: actor.key?.policy, isolation: actor.key },
        {
          stopOnError:
            options.stopOnError ?? (query.stopOnError ? query.stopOnError === "true" : undefined),
          cellTimeout: options.cellTimeout ?? query.cellTimeout,
          environment: options.environment ?? query.environment,
          isolation: options.isolation ?? query.isolation,
          signal: hangUp.signal,
        },
      );
      reply.raw.off("close", onClose);
      return reply
        .status(run.status === "rejected" ? 422 : 200)
        .send({ ...run, download: `/v1/notebooks/${run.id}/notebook.ipynb` });
    },
  );

  app.get(
    "/v1/notebooks/:id",
    {
      config: { scope: "execute" },
      schema: {
        summary: "A notebook run",
        params: Params,
        response: { 200: RunSchema, ...errors },
      },
    },
    async (request) => {
      const run = await notebooks.get(
        request.params.id,
        request.actor!.userId,
        hasScope(request.actor, "admin"),
      );
      return { ...run, download: `/v1/notebooks/${run.id}/notebook.ipynb` };
    },
  );

  app.get(
    "/v1/notebooks/:id/notebook.ipynb",
    {
      config: { scope: "execute" },
      schema: { summary: "Download the executed notebook (.ipynb)", params: Params },
    },
    async (request, reply) => {
      const run = await notebooks.get(
        request.params.id,
        request.actor!.userId,
        hasScope(request.actor, "admin"),
      );
      return reply
        .type("application/x-ipynb+json")
        .header("content-disposition", `attachment; filename="${run.id}.ipynb"`)
        .send(JSON.stringify(run.notebook, null, 1));
    },
  );

  app.post(
    "/v1/analyze",
    {
      config: { scope: "execute" },
      schema: {
        summary:
          "Static analysis of python or javascript code (policy and insight, not a boundary)",
        body: z.strictObject({
          language: z.string().min(1).max(32).describe("python or javascript (or an alias)."),
          code: z
            .string()
            .refine(
              (s) => Buffer.byteLength(s) <= config.maxCodeBytes,
              `code: must be at most ${config.maxCodeBytes} bytes (maxCodeBytes)`,
            ),
        }),
        response: { 200: AnalysisReportSchema, ...errors },
      },
    },
    async (request) =>
      analyzer.analyse(request.body.language, [{ cell: null, source: request.body.code }], {
        userId: request.actor!.userId,
      }),
  );
};
