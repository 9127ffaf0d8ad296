/**
 * Test suites for big inputs: POST /v1/test-suites takes a tar archive of
 * NAME.in / NAME.out pairs (the raw body, at most judging.maxSuiteMb) and
 * answers its id, which `testsFrom` names in executions; GET shows one to
 * its owner. Parsing and storage are src/judging/suites.ts.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Config } from "../../config/schema.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import { WardenError } from "../../errors.js";
import { checkSuiteOwner, saveSuite } from "../../judging/suites.js";
import { ErrorBodySchema, ErrorResponses } from "../schemas.js";

const SuiteSchema = z.object({
  id: z.string().describe("suite_<ULID>: name it as `testsFrom` in POST /v1/executions."),
  cases: z.number().int().describe("NAME.in files found (each a case, sorted by name)."),
});

const SuiteViewSchema = z.object({
  id: z.string(),
  bytes: z.number().int().describe("Size of the stored archive."),
  createdAt: z.string(),
});

export const testSuiteRoutes: FastifyPluginAsyncZod<{
  service: ExecutionFrontend;
  config: Config;
}> = async (app, { service, config }) => {
  const maxBytes = config.judging.maxSuiteMb * 1024 * 1024;
  // The archive is the raw body: buffered up to the limit Fastify counts as it arrives.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
  app.setErrorHandler(async (error) => {
    if ((error as { code?: string }).code === "FST_ERR_CTP_BODY_TOO_LARGE")
      throw new WardenError(
        "INVALID_REQUEST",
        `body: a test suite is at most ${config.judging.maxSuiteMb} MiB (judging.maxSuiteMb)`,
        { details: { httpStatus: 413 } },
      );
    throw error; // the server's own handler answers
  });

  app.post(
    "/v1/test-suites",
    {
      config: { scope: "execute" },
      bodyLimit: maxBytes,
      schema: {
        summary: "Upload a test suite",
        description:
          "The body is a tar archive (application/x-tar) of NAME.in and NAME.out files: regular files only, no links. Each NAME.in is a case (its stdin), NAME.out its expected output (optional). Kept as long as artifacts (artifactRetentionHours).",
        response: { 201: SuiteSchema, ...ErrorResponses, 413: ErrorBodySchema },
      },
    },
    async (request, reply) => {
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const saved = await saveSuite(service.artifacts, request.actor!.userId, body, config.judging);
      service.audit({
        userId: request.actor!.userId,
        level: "info",
        event: "test_suite_uploaded",
        message: `test suite ${saved.id} with ${saved.cases} cases`,
        data: { suiteId: saved.id, cases: saved.cases, bytes: body.length },
      });
      return reply.status(201).send(saved);
    },
  );

  app.get(
    "/v1/test-suites/:id",
    {
      config: { scope: "execute" },
      schema: {
        summary: "A test suite (its owner only)",
        params: z.object({ id: z.string().max(64) }),
        response: { 200: SuiteViewSchema, ...ErrorResponses },
      },
    },
    async (request) => {
      const found = await checkSuiteOwner(
        service.artifacts,
        request.params.id,
        request.actor!.userId,
      );
      return { id: request.params.id, bytes: found.bytes, createdAt: found.createdAt };
    },
  );
};
