/**
 * How the control API turns E2B's asks into session options and sessions
 * back into E2B's answers: templates onto environments, the gaps it names,
 * and the sandbox shapes the SDK reads.
 */
import type { FastifyRequest } from "fastify";
import type { Config } from "../../config/schema.js";
import { ENVIRONMENT_NAME } from "../../contract/environment.js";
import { WardenError } from "../../errors.js";
import type { EnvironmentStore } from "../../environments/store.js";
import type { SessionInfo } from "../../sessions/types.js";
import type { CreateSandbox } from "./api-schemas.js";
import { toE2bId, type E2bDeps } from "./plane.js";

/** The envd version reported: it unlocks every SDK feature the adapter serves (docs/e2b.md). */
export const ENVD_VERSION = "0.6.4";
const CLIENT_ID = "warden";
const DOMAIN = /^[a-z0-9.-]{1,253}(:\d{1,5})?$/;

/** A gap in E2B's create options: 400 naming the field and why Warden lacks it. */
function gap(field: string, why: string): WardenError {
  return new WardenError(
    "INVALID_REQUEST",
    `${field}: not supported by Warden's E2B adapter (${why})`,
  );
}

/** Refuses the create options Warden cannot honour, each by name. */
export function refuseGaps(body: CreateSandbox, config: Config): void {
  if (body.allow_internet_access === true || (body.network && body.network.denyOut?.length))
    throw gap(
      body.allow_internet_access === true ? "allow_internet_access" : "network.denyOut",
      "a sandbox has no network unless hosts are named in network.allowOut, within the server's egress policy",
    );
  const n = body.network;
  if (n?.egressProxy !== undefined)
    throw gap("network.egressProxy", "egress goes through Warden's own proxy");
  if (n?.rules !== undefined) throw gap("network.rules", "no per-host request transforms");
  if (n?.maskRequestHost !== undefined) throw gap("network.maskRequestHost", "no host masking");
  if (n?.httpsPorts?.length)
    throw gap("network.httpsPorts", "getHost serves plain HTTP through Warden");
  if (n?.allowPublicTraffic !== undefined && n.allowPublicTraffic !== config.e2b.publicPorts)
    throw gap(
      "network.allowPublicTraffic",
      `this Warden's e2b.publicPorts is ${config.e2b.publicPorts}: set per server, not per sandbox`,
    );
  if (body.autoPause || (body.autoPauseMemory !== undefined && body.autoPauseMemory !== null))
    throw gap("autoPause", "a sandbox ends at its timeout; pause() it yourself before");
  if (body.autoResume?.enabled)
    throw gap("autoResume", "Sandbox.connect(id) resumes a paused sandbox");
  if (body.mcp !== undefined && body.mcp !== null) throw gap("mcp", "no MCP gateway in sandboxes");
  if (body.iam !== undefined && body.iam !== null) throw gap("iam", "no workload identity tokens");
  if (body.volumeMounts?.length)
    throw gap("volumeMounts", "no volumes; files live in the workspace");
  if (body.secure === false)
    throw gap("secure", "every sandbox call needs its access token; there is no insecure mode");
}

/**
 * The environment a template maps to: e2b.templates first (null: the host's
 * packages), else an environment of the same name; else 404 naming the gap.
 */
export function templateEnvironment(
  template: string,
  config: Config,
  environments: EnvironmentStore,
): string | undefined {
  const mapped = config.e2b.templates[template];
  if (mapped !== undefined) return mapped ?? undefined;
  if (ENVIRONMENT_NAME.test(template) && environments.has(template)) return template;
  const known = Object.keys(config.e2b.templates).slice(0, 20).join(", ");
  throw new WardenError(
    "NOT_FOUND",
    `template '${template.slice(0, 128)}' is not known to this Warden: templates map to environments (GET /v1/environments) or to names in e2b.templates (${known})`,
  );
}

/** The domain getHost builds names under: e2b.domain, else the Host asked (if it is one). */
export function domainOf(config: Config, request: FastifyRequest): string | undefined {
  if (config.e2b.domain) return config.e2b.domain;
  const host = request.headers.host?.toLowerCase();
  return host && DOMAIN.test(host) ? host : undefined;
}

/** What create and connect answer: where the sandbox is and its access token. */
export function sandboxAnswer(
  info: SessionInfo,
  template: string,
  deps: E2bDeps,
  request: FastifyRequest,
) {
  const token = deps.tokens.tokenFor(info.id);
  const domain = domainOf(deps.config, request);
  return {
    sandboxID: toE2bId(info.id),
    templateID: template,
    clientID: CLIENT_ID,
    envdVersion: ENVD_VERSION,
    envdAccessToken: token,
    trafficAccessToken: token,
    ...(domain ? { domain } : {}),
  };
}

/** A sandbox as list and getInfo show it. */
export function sandboxView(info: SessionInfo, template: string) {
  return {
    templateID: template,
    sandboxID: toE2bId(info.id),
    clientID: CLIENT_ID,
    startedAt: info.createdAt,
    endAt: info.expiresAt,
    cpuCount: Math.max(1, Math.ceil(info.limits.cpuPercent / 100)),
    memoryMB: info.limits.memoryMb,
    diskSizeMB: info.limits.diskMb,
    // A released session (snapshotted after a long pause) is paused to E2B: connect says where it went.
    state: info.state === "running" ? "running" : "paused",
    envdVersion: ENVD_VERSION,
    metadata: info.metadata,
    allowInternetAccess: info.network.length > 0,
  };
}
