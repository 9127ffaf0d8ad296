/** envd's /files and /health: builder C. */
import type { FastifyInstance } from "fastify";
import type { E2bDeps } from "./plane.js";

export async function filesRoutes(_app: FastifyInstance, _deps: E2bDeps): Promise<void> {}
