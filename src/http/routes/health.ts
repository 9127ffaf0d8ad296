/** Liveness, readiness (isolation self-test + store), Prometheus metrics. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import type { SandboxHost } from "../../sandbox/host.js";
import type { Store } from "../../store/store.js";

/** The isolation self-test runs a real sandbox: do it at most this often. */
const SELF_TEST_TTL_MS = 30_000;

export const healthRoutes: FastifyPluginAsyncZod<{
  service: ExecutionFrontend;
  host: Pick<SandboxHost, "selfTest">;
  store: Store;
}> = async (app, { service, host, store }) => {
  let lastTest: { at: number; failure: string | null } | undefined;
  let running: Promise<string | null> | undefined;
  const isolation = async (): Promise<string | null> => {
    if (lastTest && Date.now() - lastTest.at < SELF_TEST_TTL_MS) return lastTest.failure;
    running ??= host.selfTest().finally(() => (running = undefined));
    const failure = await running;
    lastTest = { at: Date.now(), failure };
    return failure;
  };

  app.get(
    "/healthz",
    {
      config: { scope: "public" },
      schema: {
        summary: "The process is up",
        response: { 200: z.object({ status: z.literal("ok") }) },
      },
    },
    async () => ({
      status: "ok" as const,
    }),
  );

  app.get(
    "/readyz",
    {
      config: { scope: "public" },
      schema: {
        summary: "Ready to run code: isolation self-test and store both OK",
        response: {
          200: z.object({ status: z.literal("ready"), checks: z.record(z.string(), z.string()) }),
          503: z.object({
            status: z.literal("unavailable"),
            checks: z.record(z.string(), z.string()),
          }),
        },
      },
    },
    async (_request, reply) => {
      const failure = await isolation();
      const writable = await store.isWritable();
      const checks = {
        isolation: failure === null ? "ok" : "failed",
        store: writable ? "ok" : "failed",
      };
      if (failure === null && writable) return { status: "ready" as const, checks };
      return reply.status(503).send({ status: "unavailable" as const, checks });
    },
  );

  app.get(
    "/metrics",
    { config: { scope: "public" }, schema: { summary: "Prometheus metrics", hide: true } },
    async (_request, reply) => {
      void reply.header("content-type", service.metrics.registry.contentType);
      return service.metrics.registry.metrics();
    },
  );
};
