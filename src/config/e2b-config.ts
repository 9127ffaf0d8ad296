/**
 * The E2B adapter (`e2b.*`; docs/e2b.md): E2B's own SDKs pointed at
 * `http://HOST:PORT/e2b` drive Warden sessions.
 */
import { z } from "zod";

export const E2bConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe("Serve E2B's control and sandbox APIs under /e2b."),
    domain: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[a-z0-9.-]+(:\d{1,5})?$/, "e2b.domain: a host name, optionally with :port")
      .nullable()
      .default(null)
      .describe(
        "The domain the SDK's getHost(port) builds names under (<port>-<sandbox>.<domain>); it must resolve to this Warden (wildcard DNS). Null: the Host the request came to.",
      ),
    tokenSecret: z
      .string()
      .min(32)
      .max(512)
      .nullable()
      .default(null)
      .describe(
        "Secret that signs each sandbox's access token. Null: a random one kept in the data directory (a cluster's API nodes must share one).",
      ),
    templates: z
      .record(z.string().min(1).max(128), z.string().min(1).max(64).nullable())
      .default({ base: null, "code-interpreter-v1": null })
      .describe(
        "E2B template names and the Warden environment each maps to (null: the host's packages). A template not listed maps to the environment of the same name, if there is one.",
      ),
    publicPorts: z
      .boolean()
      .default(false)
      .describe(
        "Let getHost(port) URLs answer without the sandbox's traffic token (E2B's public traffic); off, a request needs E2B-Traffic-Access-Token.",
      ),
  })
  .strict();

export type E2bConfig = z.infer<typeof E2bConfigSchema>;
