/** REST /v1/environments: the prebuilt package environments runs may name (any key). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { EnvironmentListSchema, EnvironmentSchema } from "../../contract/environment.js";
import { EnvironmentStore } from "../../environments/store.js";
import { ErrorResponses } from "../schemas.js";

export interface EnvironmentRoutesOptions {
  /** Where the environments are (the store reads them as they are now; the CLI builds them). */
  dataDir: string;
}

export const environmentRoutes: FastifyPluginAsyncZod<EnvironmentRoutesOptions> = async (
  app,
  { dataDir },
) => {
  const environments = new EnvironmentStore(dataDir);
  app.get(
    "/v1/environments",
    {
      config: { scope: "any" },
      schema: {
        summary: "Environments runs, sessions and notebooks may name (the built-in default first)",
        response: { 200: EnvironmentListSchema, ...ErrorResponses },
      },
    },
    async () => ({ environments: await environments.list() }),
  );

  app.get(
    "/v1/environments/:name",
    {
      config: { scope: "any" },
      schema: {
        summary: "One environment: languages, packages with versions, size, digest",
        params: z.object({ name: z.string().max(64) }),
        response: { 200: EnvironmentSchema, ...ErrorResponses },
      },
    },
    async (request) => environments.get(request.params.name),
  );
};
