/** envd's filesystem.Filesystem service: builder C. */
import type { FastifyInstance } from "fastify";
import type { E2bDeps } from "./plane.js";

export function filesystemService(_app: FastifyInstance, _deps: E2bDeps): void {}
