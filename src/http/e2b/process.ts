/** envd's process.Process service: builder B. */
import type { FastifyInstance } from "fastify";
import type { E2bDeps } from "./plane.js";

export function processService(_app: FastifyInstance, _deps: E2bDeps): void {}
