/**
 * The caller's side of callbacks: its key's signing secret (read, rotate)
 * and the log of its deliveries with every attempt. A key sees its user's
 * deliveries; an admin key sees everyone's.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { WardenError } from "../../errors.js";
import type { Store } from "../../store/store.js";
import type { Delivery, DeliveryAttempt } from "../../store/webhooks.js";
import { iso } from "../../store/records.js";
import { hasScope, type Actor } from "../auth.js";
import { decodeCursor, encodeCursor } from "../cursor.js";
import { emptyBodyIsNoBody } from "../empty-body.js";
import { ErrorResponses } from "../schemas.js";

export interface WebhookRoutesOptions {
  store: Pick<Store, "webhooks" | "keys">;
}

const SecretSchema = z.object({
  keyId: z.string(),
  secret: z.string().describe("HMAC-SHA256 key of Warden-Signature (the hex text itself)."),
});

const AttemptSchema = z.object({
  attempt: z.number(),
  at: z.string(),
  status: z.number().nullable().describe("The receiver's HTTP status; null: no answer."),
  error: z.string().nullable(),
  durationMs: z.number(),
});

const DeliverySchema = z.object({
  id: z.string().describe("Sent as Warden-Delivery-Id, the same on every retry."),
  executionId: z.string(),
  batchId: z.string().nullable(),
  userId: z.string(),
  url: z.string(),
  format: z.string(),
  state: z.enum(["pending", "delivered", "failed"]),
  attempts: z.number(),
  createdAt: z.string(),
  nextAttemptAt: z.string().nullable().describe("Pending: when the next attempt is due."),
  deliveredAt: z.string().nullable(),
  lastStatus: z.number().nullable(),
  lastError: z.string().nullable(),
  log: z.array(AttemptSchema),
});

const QuerySchema = z
  .object({
    executionId: z
      .string()
      .regex(/^exec_[0-9A-Z]{26}$/, "executionId: not an execution id")
      .optional(),
    state: z.enum(["pending", "delivered", "failed"]).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20).describe("Page size (1-100)."),
    cursor: z.string().max(256).optional().describe("`nextCursor` of the previous page."),
  })
  .strict();

const DELIVERY_ID = /^dlv_[0-9A-Z]{26}$/;

function view(d: Delivery, log: DeliveryAttempt[]): z.infer<typeof DeliverySchema> {
  return {
    id: d.id,
    executionId: d.executionId,
    batchId: d.batchId,
    userId: d.userId,
    url: d.url,
    format: d.format,
    state: d.state,
    attempts: d.attempts,
    createdAt: iso(d.createdAt)!,
    nextAttemptAt: d.state === "pending" ? iso(d.nextAttemptAt) : null,
    deliveredAt: iso(d.deliveredAt),
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    log: log.map((a) => ({ ...a, at: iso(a.at)! })),
  };
}

/** The caller's key: the secret belongs to a key, not to a user. */
function keyOf(actor: Actor | null): string {
  const id = actor?.key?.id;
  if (!id) throw new WardenError("INVALID_REQUEST", "webhook secrets belong to API keys");
  return id;
}

function secretAnswer(keyId: string, secret: string | null): { keyId: string; secret: string } {
  if (secret === null) throw new WardenError("NOT_FOUND", `key ${keyId} not found`);
  return { keyId, secret };
}

export const webhookRoutes: FastifyPluginAsyncZod<WebhookRoutesOptions> = async (
  app,
  { store },
) => {
  app.get(
    "/v1/webhooks/secret",
    {
      config: { scope: "execute" },
      schema: {
        summary: "This key's webhook signing secret",
        description: "Made on first use. Verify deliveries with it (docs/webhooks.md).",
        response: { 200: SecretSchema, ...ErrorResponses },
      },
    },
    async (request) => {
      const keyId = keyOf(request.actor);
      return secretAnswer(keyId, await store.keys.webhookSecret(keyId));
    },
  );

  app.post(
    "/v1/webhooks/secret/rotate",
    {
      config: { scope: "execute" },
      preParsing: emptyBodyIsNoBody,
      schema: {
        summary: "Replace this key's webhook signing secret",
        description:
          "Deliveries from now on (retries included) are signed with the new secret; the old one stops at once.",
        response: { 200: SecretSchema, ...ErrorResponses },
      },
    },
    async (request) => {
      const keyId = keyOf(request.actor);
      return secretAnswer(keyId, await store.keys.rotateWebhookSecret(keyId));
    },
  );

  app.get(
    "/v1/webhooks/deliveries",
    {
      config: { scope: "execute" },
      schema: {
        summary: "Callback deliveries and their attempts (own; admin: all), newest first",
        querystring: QuerySchema,
        response: {
          200: z.object({ deliveries: z.array(DeliverySchema), nextCursor: z.string().nullable() }),
          ...ErrorResponses,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const actor = request.actor!;
      const before = q.cursor === undefined ? undefined : decodeCursor(q.cursor, DELIVERY_ID);
      const rows = await store.webhooks.list({
        userId: hasScope(actor, "admin") ? undefined : actor.userId,
        executionId: q.executionId,
        state: q.state,
        before,
        limit: q.limit + 1,
      });
      const page = rows.slice(0, q.limit);
      const attempts = await store.webhooks.attempts(page.map((d) => d.id));
      const last = page[page.length - 1];
      return {
        deliveries: page.map((d) => view(d, attempts.get(d.id) ?? [])),
        nextCursor: rows.length > q.limit && last ? encodeCursor(last) : null,
      };
    },
  );
};
