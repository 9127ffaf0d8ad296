/**
 * The execution request schema, shared by REST, the library API and (later)
 * MCP. Every field is bounded; the bounds come from config, and a value past
 * one is refused with a message naming the field and the limit.
 */
import { z } from "zod";
import type { Config } from "../config/schema.js";
import { WardenError } from "../errors.js";
import type { SandboxFile } from "../sandbox/types.js";
import { checkWorkspacePath } from "../sandbox/workspace.js";
import { USER_ID_PATTERN } from "../store/keys.js";
import {
  CompileLimitsSchema,
  RequestLimitsSchema,
  resolveCompileLimits,
  resolveLimits,
} from "./limits.js";
import type { ExecutionRequest, ExecutionSource } from "./execution.js";
import type { RuntimeDefinition } from "../config/runtime-definition.js";
import { EnvironmentNameSchema } from "../contract/environment.js";
import { IsolationSchema } from "../contract/isolation.js";
import { resolveIsolation, type KeyIsolation } from "./isolation.js";
import { JudgeRequestFields } from "../contract/judging.js";
import { resolveJudge } from "../judging/request.js";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const MAX_ENV_VARS = 64;
const MAX_ARGS = 256;

/** A request's egress: names (exact or *.domain) and ports, within the server's policy. */
export const NetworkRequestSchema = z
  .object({
    allow: z.array(z.string().max(253)).max(64),
    ports: z.array(z.number().int()).optional(),
  })
  .strict()
  .describe(
    "Egress allowlist (host names, *.domain) and ports, within the server's policy; absent = no network.",
  );

export function createExecutionSchemas(config: Config) {
  const bytes = (field: string, max: number, key: string) =>
    z
      .string()
      .refine(
        (s) => Buffer.byteLength(s) <= max,
        `${field}: must be at most ${max} bytes (${key})`,
      );
  const FileSchema = z
    .object({
      path: z.string().min(1).max(1024).describe("Path under /workspace, relative, no '..'."),
      content: z.string().describe("File content, as text or base64 (see encoding)."),
      encoding: z.enum(["utf8", "base64"]).default("utf8"),
    })
    .strict();
  const CreateExecutionSchema = z
    .object({
      language: z.string().min(1).max(64).describe("Language name or alias (GET /v1/runtimes)."),
      code: bytes("code", config.maxCodeBytes, "maxCodeBytes")
        .optional()
        .describe("Source code; saved under the runtime's file name. Give this or files."),
      files: z
        .array(FileSchema)
        .min(1)
        .max(config.maxFiles, `files: at most ${config.maxFiles} files (maxFiles)`)
        .optional()
        .describe("Source files; the entry point is `entrypoint` or the first file."),
      entrypoint: z.string().max(1024).optional(),
      stdin: bytes("stdin", config.maxStdinBytes, "maxStdinBytes").optional(),
      args: z
        .array(z.string().max(4096))
        .max(MAX_ARGS, `args: at most ${MAX_ARGS} arguments`)
        .optional(),
      env: z
        .record(
          z.string().regex(ENV_NAME, "env: names must match [A-Za-z_][A-Za-z0-9_]*"),
          z.string().max(32_768),
        )
        .refine(
          (e) => Object.keys(e).length <= MAX_ENV_VARS,
          `env: at most ${MAX_ENV_VARS} variables`,
        )
        .optional(),
      timeout: z.number().positive().optional().describe("Wall-clock timeout in seconds."),
      limits: RequestLimitsSchema.optional(),
      compileLimits: CompileLimitsSchema.optional(),
      network: NetworkRequestSchema.optional(),
      environment: EnvironmentNameSchema.optional(),
      isolation: IsolationSchema.optional().describe(
        "Isolation tier; absent: the key's, else the server's (sandbox.isolation). A key forced to gvisor refuses namespaces (403 ISOLATION_FORBIDDEN).",
      ),
      artifacts: z
        .array(z.string().min(1).max(1024))
        .max(
          config.maxArtifactsPerExecution,
          `artifacts: at most ${config.maxArtifactsPerExecution} (maxArtifactsPerExecution)`,
        )
        .optional()
        .describe(
          "Files (relative to /workspace) to return as artifacts, besides everything under /workspace/output/.",
        ),
      retryOnFailure: z.boolean().default(true).describe("Retry Warden's own transient failures."),
      wait: z
        .boolean()
        .default(true)
        .describe("Answer with the result (true) or at once with 202 (false)."),
      userId: z
        .string()
        .regex(USER_ID_PATTERN)
        .optional()
        .describe("Acting user; keys with the delegate scope only."),
      ...JudgeRequestFields,
      callbackUrl: z
        .string()
        .max(2048, "callbackUrl: at most 2048 characters")
        .optional()
        .describe(
          "When the execution ends, its result is POSTed here, signed with the key's webhook secret (docs/webhooks.md). Checked like egress: no loopback, private or metadata addresses unless the server allows the host.",
        ),
    })
    .strict();
  return { FileSchema, CreateExecutionSchema };
}

export type CreateExecutionInput = z.infer<
  ReturnType<typeof createExecutionSchemas>["CreateExecutionSchema"]
>;

/** Decodes and checks files; a request's `code` becomes one file named for the runtime. */
export function toSandboxFiles(
  input: Pick<CreateExecutionInput, "code" | "files">,
  defaultFileName: string,
  config: Pick<Config, "maxFileBytes" | "maxCodeBytes">,
): SandboxFile[] {
  if ((input.code === undefined) === (input.files === undefined))
    throw new WardenError("INVALID_REQUEST", "code, files: give exactly one of them");
  if (input.code !== undefined) return [{ path: defaultFileName, content: input.code }];
  let total = 0;
  const seen = new Set<string>();
  return input.files!.map((f, i) => {
    const path = checkWorkspacePath(f.path, `files[${i}].path`);
    if (seen.has(path))
      throw new WardenError("INVALID_REQUEST", `files[${i}].path: ${path} is given twice`);
    seen.add(path);
    const content = f.encoding === "base64" ? Buffer.from(f.content, "base64") : f.content;
    const size = Buffer.byteLength(content);
    if (size > config.maxFileBytes)
      throw new WardenError(
        "INVALID_REQUEST",
        `files[${i}].content: must be at most ${config.maxFileBytes} bytes (maxFileBytes)`,
      );
    total += size;
    if (total > config.maxCodeBytes * 4)
      throw new WardenError(
        "INVALID_REQUEST",
        `files: together at most ${config.maxCodeBytes * 4} bytes (4 × maxCodeBytes)`,
      );
    return { path, content };
  });
}

/**
 * A checked request as the engine runs it: files, entry point, limits within
 * the server's maxima, and what the caller already resolved (the language's
 * definition, egress, environment). One place for a single node and a
 * cluster API node, so both refuse the same things the same way.
 */
export function toExecutionRequest(
  config: Config,
  def: Pick<RuntimeDefinition, "language" | "fileName">,
  input: CreateExecutionInput,
  resolved: Pick<ExecutionRequest, "network" | "environment"> & {
    /** A checker's language by its canonical name, undefined when not runnable here. */
    checkerLanguage?: (name: string) => string | undefined;
  },
  actor: { userId: string; keyId?: string | undefined; isolation?: KeyIsolation | undefined },
  source: ExecutionSource,
): ExecutionRequest {
  const files = toSandboxFiles(input, def.fileName, config);
  if (input.entrypoint !== undefined && !files.some((f) => f.path === input.entrypoint))
    throw new WardenError("INVALID_REQUEST", `entrypoint: no file named ${input.entrypoint}`);
  const judge = resolveJudge(config, input, resolved.checkerLanguage);
  return {
    language: def.language,
    files,
    entrypoint: input.entrypoint,
    stdin: input.stdin,
    args: input.args,
    env: input.env,
    limits: resolveLimits(config, { timeout: input.timeout, limits: input.limits }),
    compileLimits: resolveCompileLimits(config, input.compileLimits),
    network: resolved.network,
    environment: resolved.environment,
    isolation: resolveIsolation(config.sandbox.isolation, input.isolation, actor.isolation),
    artifacts: input.artifacts?.map((path, i) => checkWorkspacePath(path, `artifacts[${i}]`)),
    retryOnFailure: input.retryOnFailure,
    userId: actor.userId,
    keyId: actor.keyId,
    source,
    ...(judge ? { judge } : {}),
  };
}
