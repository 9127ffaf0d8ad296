/**
 * Control-API calls E2B has and Warden's adapter does not: each answers 501
 * naming the SDK call, which the SDK shows as `SandboxError("501: ...")`.
 * (Paths nobody knows get the plugin's generic 501.)
 */
import type { FastifyInstance } from "fastify";

const GAPS: [string, string, string][] = [
  // [method, path, what the SDK calls it]
  [
    "POST",
    "/sandboxes/:id/snapshots",
    "Sandbox.createSnapshot (Warden snapshots: POST /v1/sessions/:id/snapshot)",
  ],
  ["GET", "/snapshots", "Sandbox.listSnapshots"],
  ["POST", "/sandboxes/:id/fork", "Sandbox.fork"],
  [
    "PUT",
    "/sandboxes/:id/network",
    "Sandbox.updateNetwork (a sandbox's egress is fixed at create)",
  ],
  ["GET", "/sandboxes/:id/logs", "sandbox logs"],
  ["GET", "/v2/sandboxes/:id/logs", "sandbox logs"],
  ["POST", "/sandboxes/:id/refreshes", "Sandbox.refresh"],
  ["ALL", "/templates", "Templates (templates map to Warden environments: GET /v1/environments)"],
  ["ALL", "/templates/*", "Templates (templates map to Warden environments: GET /v1/environments)"],
  ["ALL", "/v2/templates/*", "Template builds (templates map to Warden environments)"],
  ["ALL", "/v3/templates", "Template builds (templates map to Warden environments)"],
  ["ALL", "/volumes", "Volumes"],
  ["ALL", "/volumes/*", "Volumes"],
  ["ALL", "/volumecontent/*", "Volumes"],
  ["ALL", "/secrets", "Secrets"],
  ["ALL", "/secrets/*", "Secrets"],
];

const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"] as const;

export function unsupportedRoutes(app: FastifyInstance): void {
  for (const [method, url, what] of GAPS)
    app.route({
      method: method === "ALL" ? [...METHODS] : (method as (typeof METHODS)[number]),
      url,
      config: { scope: "sessions", e2b: true },
      schema: { hide: true },
      handler: async (_request, reply) =>
        reply
          .status(501)
          .send({ code: 501, message: `${what} is not supported by Warden's E2B adapter` }),
    });
}
