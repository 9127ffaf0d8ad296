/** The code interpreter's /execute and /contexts: builder D. */
import type { FastifyInstance } from "fastify";
import type { E2bDeps } from "./plane.js";

export async function interpreterRoutes(_app: FastifyInstance, _deps: E2bDeps): Promise<void> {}
