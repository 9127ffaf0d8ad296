/** Batches and signed callbacks (`webhooks.*`; docs/webhooks.md). */
import { z } from "zod";
import { ipLiteral, parseHostname } from "../util/hostname.js";

/** An allowHosts entry: a host name (normal form) or an IP address, exact. */
const AllowedHostSchema = z.string().transform((entry, ctx) => {
  const ip = ipLiteral(entry);
  if (ip !== null) return ip;
  const name = parseHostname(entry);
  if (!name.ok) {
    ctx.addIssue({ code: "custom", message: `not a host name or IP address (${name.reason})` });
    return z.NEVER;
  }
  return name.name;
});

export const WebhooksConfigSchema = z
  .object({
    allowHosts: z
      .array(AllowedHostSchema)
      .max(64)
      .default([])
      .describe(
        "Callback hosts (exact names or IP addresses) that may resolve to loopback or private addresses (tests, intranets). Link-local and cloud metadata addresses stay refused.",
      ),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(120_000)
      .default(10_000)
      .describe("One delivery attempt: connect, send and read the answer's head (ms)."),
    maxAttempts: z
      .number()
      .int()
      .min(1)
      .max(50)
      .default(8)
      .describe("Attempts per delivery before it is marked failed."),
    retryForSeconds: z
      .number()
      .int()
      .min(1)
      .default(3600)
      .describe("No retry is scheduled later than this after the first attempt (s)."),
    retryBaseMs: z
      .number()
      .int()
      .min(10)
      .default(10_000)
      .describe("Delay before the first retry (ms); it doubles with each attempt, ±20% jitter."),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(4)
      .describe("Deliveries one API node sends at the same time."),
    maxBatchSize: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(20)
      .describe("Items in one POST /v1/executions/batch."),
    pollMs: z
      .number()
      .int()
      .min(50)
      .default(1000)
      .describe(
        "How often each API node looks for due deliveries (ms); an end seen on this node is delivered sooner.",
      ),
  })
  .strict();

export type WebhooksConfig = z.infer<typeof WebhooksConfigSchema>;
