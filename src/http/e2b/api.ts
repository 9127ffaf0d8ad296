/** E2B's control API (/v2/sandboxes...): builder A. */
import type { FastifyInstance } from "fastify";
import type { E2bDeps } from "./plane.js";

export async function apiRoutes(_app: FastifyInstance, _deps: E2bDeps): Promise<void> {}
