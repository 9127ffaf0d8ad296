/**
 * The Gate of a worker's internal listener: no keys and no rate limits (the
 * API node applied both), only the signature of ./internal-auth.ts. The actor
 * of every request is the principal the API node signed, so the routes check
 * ownership exactly as they do on a single node.
 */
import type { IncomingMessage } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ExecutionFrontend } from "../executions/frontend.js";
import { WardenError } from "../errors.js";
import type { Actor } from "../http/auth.js";
import type { RefusalLog } from "../http/refusals.js";
import type { Scope } from "../store/keys.js";
import { keyOf, verifyRequest, type Principal } from "./internal-auth.js";

export class InternalGate {
  constructor(
    private readonly secret: string,
    private readonly service: ExecutionFrontend,
    private readonly refusals: RefusalLog,
  ) {}

  private admit(
    headers: IncomingMessage["headers"],
    method: string,
    target: string,
    ip: string,
    scope: Scope | "any",
  ): Actor {
    let principal: Principal;
    try {
      principal = verifyRequest(this.secret, headers, method, target);
    } catch (error) {
      // Someone reached the worker without an API node: worth one (throttled) audit row.
      this.service.metrics.reject("unauthorized");
      this.refusals.record(ip, {
        level: "warn",
        event: "auth_failure",
        message: (error as Error).message,
        data: { ip, method, route: target.split("?")[0] },
      });
      throw error;
    }
    const key = keyOf(principal);
    // The API node checked the scope already; checked again so a bug there is not a hole here.
    if (scope !== "any" && !key.scopes.includes(scope) && !key.scopes.includes("admin"))
      throw new WardenError("PERMISSION_DENIED", `this key lacks the ${scope} scope`);
    return { userId: principal.userId, key, anonymous: false };
  }

  /** A WebSocket upgrade forwarded by an API node (previews). */
  admitRaw(raw: IncomingMessage, scope: Scope): Actor {
    const ip = raw.socket.remoteAddress ?? "unknown";
    return this.admit(raw.headers, raw.method ?? "GET", raw.url ?? "", ip, scope);
  }

  /** onRequest hook: everything but the public health routes must be signed. */
  check = async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    request.actor = null;
    const scope = request.routeOptions.config.scope ?? "any";
    if (scope === "public") return;
    request.actor = this.admit(
      request.headers,
      request.method,
      request.raw.url ?? "",
      request.ip,
      scope,
    );
  };
}
