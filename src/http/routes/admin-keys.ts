/**
 * API keys over HTTP, for admins: the same options as `warden keys create`,
 * without shell access to the data dir. The token is answered once, at
 * creation; a list never holds a token or its hash. A revoked key is refused
 * on its next request (keys are looked up in the store on every request).
 * Every change is audited.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Config } from "../../config/schema.js";
import { WardenError } from "../../errors.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";
import { createKey, updateKey } from "../../executions/new-key.js";
import { POLICY_MODES } from "../../contract/policy.js";
import { IsolationSchema } from "../../contract/isolation.js";
import {
  ENV_ADMIN_KEY_ID,
  KEY_ID_PATTERN,
  KeyPatchSchema,
  NewKeySchema,
  SCOPES,
  type ApiKey,
} from "../../store/keys.js";
import type { KeyStore } from "../../store/store.js";
import { iso } from "../../store/records.js";
import { ErrorResponses } from "../schemas.js";
import { emptyBodyIsNoBody } from "../empty-body.js";

export const KeyViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  userId: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  networkAllow: z.array(z.string()).nullable(),
  policy: z.enum(POLICY_MODES).nullable(),
  isolationDefault: IsolationSchema.nullable().describe("The key's tier; null: the server's."),
  isolationForced: z.boolean().describe("The key's runs can never leave isolationDefault."),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});

/** What may be shown of a key: everything but its secret. */
function view(key: ApiKey): z.infer<typeof KeyViewSchema> {
  return {
    id: key.id,
    name: key.name,
    userId: key.userId,
    scopes: key.scopes,
    networkAllow: key.networkAllow,
    policy: key.policy,
    isolationDefault: key.isolationDefault,
    isolationForced: key.isolationForced,
    createdAt: iso(key.createdAt)!,
    revokedAt: iso(key.revokedAt),
    lastUsedAt: iso(key.lastUsedAt),
  };
}

export function keyRoutes(
  app: FastifyInstance,
  o: { service: ExecutionFrontend; keys: KeyStore; config: Config },
): void {
  const zapp = app.withTypeProvider<ZodTypeProvider>();
  const KeyIdParams = z.object({
    id: z.string().regex(KEY_ID_PATTERN, "id: not a key id"),
  });
  /** An admin's change to a key, in the audit trail. */
  const audited = (
    request: FastifyRequest,
    event: string,
    message: string,
    data: Record<string, unknown>,
  ): void =>
    o.service.audit({
      userId: request.actor!.userId,
      level: "info",
      event,
      message,
      data: { ...data, requestId: request.id },
    });

  zapp.post(
    "/api/sandbox/keys",
    {
      config: { scope: "admin" },
      schema: {
        summary: "Create an API key (the token is in this answer only)",
        body: NewKeySchema,
        response: { 201: KeyViewSchema.extend({ token: z.string() }), ...ErrorResponses },
      },
    },
    async (request, reply) => {
      const { key, token } = await createKey(o.keys, o.config.network, request.body);
      audited(
        request,
        "key_created",
        `key ${key.id} created for ${key.userId} (${key.scopes.join(",")})`,
        {
          keyId: key.id,
          forUser: key.userId,
          scopes: key.scopes,
          isolationDefault: key.isolationDefault,
          isolationForced: key.isolationForced,
        },
      );
      return reply.status(201).send({ ...view(key), token });
    },
  );

  zapp.get(
    "/api/sandbox/keys",
    {
      config: { scope: "admin" },
      schema: {
        summary: "Every API key, revoked ones included (never a token)",
        response: { 200: z.array(KeyViewSchema), ...ErrorResponses },
      },
    },
    async () => (await o.keys.list()).map(view),
  );

  zapp.patch(
    "/api/sandbox/keys/:id",
    {
      config: { scope: "admin" },
      schema: {
        summary: "Change a key's name, scopes, egress allowlist, policy or isolation tier",
        params: KeyIdParams,
        body: KeyPatchSchema,
        response: { 200: KeyViewSchema, ...ErrorResponses },
      },
    },
    async (request) => {
      const { id } = request.params;
      const key = await updateKey(o.keys, o.config.network, id, request.body);
      if (!key) throw new WardenError("NOT_FOUND", `no active key ${id}`);
      audited(
        request,
        "key_updated",
        `key ${id} updated (${Object.keys(request.body).join(", ")})`,
        { keyId: id, changed: request.body },
      );
      return view(key);
    },
  );

  zapp.post(
    "/api/sandbox/keys/:id/rotate",
    {
      config: { scope: "admin" },
      preParsing: emptyBodyIsNoBody,
      schema: {
        summary: "A new token for a key (in this answer only); the old one is refused from now on",
        params: KeyIdParams,
        response: {
          200: z.object({ key: KeyViewSchema, token: z.string() }),
          ...ErrorResponses,
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      // Re-pointed at WARDEN_ADMIN_TOKEN at every start: a rotation would not last.
      if (id === ENV_ADMIN_KEY_ID)
        throw new WardenError(
          "INVALID_REQUEST",
          "id: this key follows WARDEN_ADMIN_TOKEN; change the variable instead",
        );
      const rotated = await o.keys.rotate(id);
      if (!rotated) throw new WardenError("NOT_FOUND", `no active key ${id}`);
      audited(request, "key_rotated", `key ${id} rotated`, { keyId: id });
      return { key: view(rotated.key), token: rotated.token };
    },
  );

  zapp.delete(
    "/api/sandbox/keys/:id",
    {
      config: { scope: "admin" },
      schema: {
        summary: "Revoke an API key (refused from its next request on)",
        params: KeyIdParams,
        response: { 200: z.object({ success: z.boolean() }), ...ErrorResponses },
      },
    },
    async (request) => {
      const { id } = request.params;
      if (!(await o.keys.revoke(id))) throw new WardenError("NOT_FOUND", `no active key ${id}`);
      audited(request, "key_revoked", `key ${id} revoked`, { keyId: id });
      return { success: true };
    },
  );
}
