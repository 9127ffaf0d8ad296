/**
 * The bodies and queries of E2B's control API as Warden reads them (wire
 * facts from the SDK, our own definitions). Everything a client sends is
 * bounded here, with messages that name the field and the limit; fields E2B
 * has and Warden cannot honour are read so that the route can name the gap.
 */
import { z } from "zod";

export const MAX_METADATA_ENTRIES = 32;
export const MAX_METADATA_KEY = 64;
export const MAX_METADATA_VALUE = 1024;
export const MAX_ENV_VARS = 64;
export const MAX_ENV_VALUE = 8192;
/** All of a sandbox's variables together: they sit in every process's environment. */
export const MAX_ENV_TOTAL = 64 * 1024;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** The first key that breaks `rule`, as a message (zod's own record-key issue names no field). */
function keyRule(keys: string[], test: (k: string) => boolean, message: string) {
  return keys.every(test) || message;
}

const MetadataSchema = z
  .record(
    z.string(),
    z.string().max(MAX_METADATA_VALUE, `a value of at most ${MAX_METADATA_VALUE} chars`),
  )
  .superRefine((m, ctx) => {
    const keys = Object.keys(m);
    for (const verdict of [
      keys.length <= MAX_METADATA_ENTRIES || `metadata: at most ${MAX_METADATA_ENTRIES} entries`,
      keyRule(
        keys,
        (k) => k.length > 0 && k.length <= MAX_METADATA_KEY,
        `metadata: keys of 1 to ${MAX_METADATA_KEY} chars`,
      ),
    ])
      if (verdict !== true) return void ctx.addIssue({ code: "custom", message: verdict });
  });

/**
 * Variables a client hands a sandbox (`envVars` at create, a cell's
 * `env_vars`): the same bounds wherever they come in, named by `field`.
 */
export function envVarsSchema(field: string) {
  return z
    .record(z.string(), z.string().max(MAX_ENV_VALUE, `a value of at most ${MAX_ENV_VALUE} bytes`))
    .superRefine((e, ctx) => {
      const keys = Object.keys(e);
      const total = Object.entries(e).reduce(
        (n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v),
        0,
      );
      for (const verdict of [
        keys.length <= MAX_ENV_VARS || `${field}: at most ${MAX_ENV_VARS} variables`,
        keyRule(
          keys,
          (k) => ENV_NAME.test(k),
          `${field}: names must match [A-Za-z_][A-Za-z0-9_]* (at most 128)`,
        ),
        // Warden's agent and kernels read their own settings from WARDEN_* variables.
        keyRule(
          keys,
          (k) => !k.startsWith("WARDEN_"),
          `${field}: names starting WARDEN_ are Warden's own`,
        ),
        total <= MAX_ENV_TOTAL || `${field}: at most ${MAX_ENV_TOTAL} bytes in all`,
      ])
        if (verdict !== true) return void ctx.addIssue({ code: "custom", message: verdict });
    });
}

const HostList = z.array(z.string().max(253)).max(64, "network.allowOut: at most 64 entries");

/** E2B's `network` block: only allowOut maps onto Warden's egress policy. */
const NetworkSchema = z
  .object({
    allowOut: HostList.optional(),
    denyOut: HostList.optional(),
    allowPublicTraffic: z.boolean().optional(),
    maskRequestHost: z.string().max(253).optional(),
    httpsPorts: z.array(z.number().int()).max(64).optional(),
    egressProxy: z.unknown().optional(),
    rules: z.unknown().optional(),
  })
  .strict();

export const CreateSandboxSchema = z
  .object({
    templateID: z.string().min(1).max(128).default("base"),
    timeout: z
      .number()
      .int("timeout: whole seconds")
      .positive("timeout: at least 1 second")
      .optional(),
    metadata: MetadataSchema.nullable().optional(),
    envVars: envVarsSchema("envVars").nullable().optional(),
    allow_internet_access: z.boolean().nullable().optional(),
    network: NetworkSchema.nullable().optional(),
    autoPause: z.boolean().nullable().optional(),
    autoPauseMemory: z.boolean().nullable().optional(),
    autoResume: z.object({ enabled: z.boolean() }).strict().nullable().optional(),
    mcp: z.unknown().optional(),
    iam: z.unknown().optional(),
    volumeMounts: z.array(z.unknown()).max(64).nullable().optional(),
    secure: z.boolean().nullable().optional(),
  })
  .strict();
export type CreateSandbox = z.infer<typeof CreateSandboxSchema>;

export const ConnectSandboxSchema = z
  .object({
    timeout: z.number().int().positive("timeout: at least 1 second").optional(),
    memory: z.boolean().optional(),
  })
  .strict();

export const TimeoutSchema = z
  .object({
    timeout: z.number().int("timeout: whole seconds").positive("timeout: at least 1 second"),
  })
  .strict();

export const PauseSchema = z.object({ memory: z.boolean().optional() }).strict();

/** A sandbox id in the path: E2B's form (the ULID in lower case) or Warden's `sess_…`. */
export const SandboxParams = z.object({ id: z.string().min(1).max(64) });

const STATES = ["running", "paused"] as const;
export type ListState = (typeof STATES)[number];

export const ListQuerySchema = z
  .object({
    metadata: z.string().max(8192, "metadata: at most 8192 chars").optional(),
    state: z
      .union([z.string().max(64), z.array(z.string().max(16)).max(4)])
      .optional()
      .transform((s, ctx) => {
        if (s === undefined) return [...STATES];
        const wanted = (Array.isArray(s) ? s : s.split(",")).filter((x) => x !== "");
        for (const x of wanted)
          if (!(STATES as readonly string[]).includes(x)) {
            ctx.addIssue({ code: "custom", message: "state: running or paused" });
            return z.NEVER;
          }
        return wanted as ListState[];
      }),
    limit: z.coerce.number().int().min(1).max(1000, "limit: 1 to 1000").optional(),
    nextToken: z
      .string()
      .regex(/^\d{1,6}$/, "nextToken: a token from x-next-token")
      .optional(),
    template: z.string().max(128).optional(),
    startedAfter: z.string().max(64).optional(),
    order: z.enum(["asc", "desc"]).optional(),
  })
  .strict();
export type ListQuery = z.infer<typeof ListQuerySchema>;

export const MetricsQuerySchema = z
  .object({
    start: z.coerce.number().int().optional(),
    end: z.coerce.number().int().optional(),
  })
  .strict();

/**
 * The `metadata` filter of a list: `k=v&k2=v2`, each key and value
 * URI-encoded once more by the SDK before the query itself is encoded.
 */
export function parseMetadataFilter(raw: string | undefined): Record<string, string> | string {
  const out: Record<string, string> = {};
  if (!raw) return out;
  const params = new URLSearchParams(raw);
  let n = 0;
  for (const [k, v] of params) {
    if (++n > MAX_METADATA_ENTRIES) return `metadata: at most ${MAX_METADATA_ENTRIES} pairs`;
    try {
      out[decodeURIComponent(k)] = decodeURIComponent(v);
    } catch {
      return "metadata: bad percent-encoding";
    }
  }
  return out;
}
