/**
 * An execution request as the queue keeps it (`executions.request`, JSON):
 * what an API node validated, for a worker to run. Binary files travel as
 * base64. The environment travels by NAME only and is resolved on the worker
 * against its own store: a row must never be able to name host paths to
 * bind-mount. A worker parses the row with this schema (bounded), so a
 * corrupt or planted row fails that job alone.
 */
import { z } from "zod";
import { COMPARE_MODES } from "../contract/judging.js";
import { PolicyModeSchema, type PolicyMode } from "../contract/policy.js";
import { IsolationSchema } from "../contract/isolation.js";
import { SandboxLimitsSchema } from "../contract/limits.js";
import { WardenError } from "../errors.js";
import type { EgressPolicy } from "../network/policy.js";
import type { ExecutionRequest } from "../executions/execution.js";
import type { JudgeSpec } from "../judging/types.js";

/** Cases a row may carry: far past judging.maxTests, which the worker applies too. */
export const MAX_JOB_CASES = 100_000;

/** A test-case run as a row carries it (src/judging/types.ts JudgeSpec), bounded. */
const JudgeJobSchema = z.object({
  cases: z
    .array(
      z.object({
        name: z.string().min(1).max(128),
        stdin: z.string().optional(),
        args: z.array(z.string().max(4096)).max(256).optional(),
        expectedOutput: z.string().optional(),
        limits: SandboxLimitsSchema.optional(),
        points: z.number().min(0).max(1_000_000),
      }),
    )
    .max(MAX_JOB_CASES),
  suiteId: z
    .string()
    .regex(/^suite_[0-9A-Z]{26}$/)
    .optional(),
  compare: z.object({
    mode: z.enum(COMPARE_MODES),
    absoluteTolerance: z.number().min(0).optional(),
    relativeTolerance: z.number().min(0).optional(),
  }),
  checker: z
    .object({ language: z.string().max(100), code: z.string(), limits: SandboxLimitsSchema })
    .optional(),
  stopOnFirstFailure: z.boolean(),
});

const MAX_FILES = 1000;

/**
 * How a queued row's JSON begins when it names an environment: the claim
 * matches the name in the row's first bytes (queue.ts), never reading the
 * rest (megabytes of base64 files, each claim, for every queued row).
 */
export const JOB_PREFIX = '{"v":1,"environment":"';

/**
 * Egress travels as the request's allowlist and ports only (already narrowed
 * by the key on the API node); the worker re-bounds them by its own
 * `network` config, which alone supplies static hosts and private-address
 * rules: a row cannot open what the worker's config does not.
 */
const EgressSchema = z.object({
  allow: z.array(z.string().max(300)).max(1000),
  ports: z.array(z.number().int().min(1).max(65_535)).max(1000),
});

export const QueuedJobSchema = z.object({
  v: z.literal(1),
  language: z.string().max(100),
  files: z
    .array(
      z.object({
        path: z.string().max(4096),
        content: z.string(),
        base64: z.boolean().optional(),
      }),
    )
    .max(MAX_FILES),
  entrypoint: z.string().max(4096).optional(),
  stdin: z.string().optional(),
  args: z.array(z.string()).max(1000).optional(),
  env: z.record(z.string(), z.string()).optional(),
  limits: SandboxLimitsSchema,
  compileLimits: z
    .object({
      timeoutMs: z.number().optional(),
      cpuTimeMs: z.number().optional(),
      memoryMb: z.number().optional(),
    })
    .optional(),
  network: EgressSchema.nullable(),
  environment: z.string().max(200).nullable(),
  artifacts: z.array(z.string().max(4096)).max(MAX_FILES).optional(),
  retryOnFailure: z.boolean(),
  source: z.enum(["api", "piston", "judge0", "library", "mcp", "cli"]),
  /**
   * Static analysis still to do on the worker (an API node has no sandbox to
   * analyse in): the key's mode, or null for the server's. Absent = done.
   */
  policy: PolicyModeSchema.nullable().optional(),
  /** A test-case run; the worker re-bounds its limits and count by its own config. */
  judge: JudgeJobSchema.optional(),
  /**
   * The tier the API node resolved (request, key, server). Absent in rows
   * queued before the tier existed: namespaces, as they were submitted.
   */
  isolation: IsolationSchema.optional(),
});
export type QueuedJob = z.infer<typeof QueuedJobSchema>;

/** The job row for a validated request; `policy` set when the worker must still analyse it. */
export function toJob(request: ExecutionRequest, policy?: PolicyMode | null): QueuedJob {
  return {
    v: 1,
    // Second, always: the claim reads the environment from the row's first bytes (JOB_PREFIX).
    environment: request.environment?.name ?? null,
    language: request.language,
    files: request.files.map((f) =>
      typeof f.content === "string"
        ? { path: f.path, content: f.content }
        : { path: f.path, content: f.content.toString("base64"), base64: true },
    ),
    entrypoint: request.entrypoint,
    stdin: request.stdin,
    args: request.args,
    env: request.env,
    limits: request.limits,
    compileLimits: request.compileLimits,
    network: request.network
      ? { allow: [...request.network.allow], ports: [...request.network.ports] }
      : null,
    artifacts: request.artifacts,
    retryOnFailure: request.retryOnFailure,
    source: request.source,
    ...(policy !== undefined ? { policy } : {}),
    ...(request.judge ? { judge: request.judge } : {}),
    ...(request.isolation ? { isolation: request.isolation } : {}),
  };
}

/**
 * A row's test-case run checked against THIS worker's bounds: every case's
 * and the checker's limits through `bound` (its maxima), the count within
 * its judging.maxTests. A planted row gets no larger sandbox than a request.
 */
export function judgeFromJob(
  judge: NonNullable<QueuedJob["judge"]>,
  bound: (limits: QueuedJob["limits"]) => QueuedJob["limits"],
  maxTests: number,
): JudgeSpec {
  if (judge.cases.length > maxTests)
    throw new WardenError(
      "INVALID_REQUEST",
      `tests: over this worker's judging.maxTests (${maxTests})`,
    );
  return {
    ...judge,
    cases: judge.cases.map((c) => (c.limits ? { ...c, limits: bound(c.limits) } : c)),
    checker: judge.checker ? { ...judge.checker, limits: bound(judge.checker.limits) } : undefined,
  };
}

/** Back to a request the local engine runs, with the environment and egress the worker resolved. */
export function fromJob(
  job: QueuedJob,
  who: { userId: string; keyId: string | null },
  resolved: {
    limits: ExecutionRequest["limits"];
    environment: ExecutionRequest["environment"];
    network: EgressPolicy | null;
    judge?: JudgeSpec | undefined;
  },
): ExecutionRequest {
  return {
    language: job.language,
    files: job.files.map((f) => ({
      path: f.path,
      content: f.base64 ? Buffer.from(f.content, "base64") : f.content,
    })),
    entrypoint: job.entrypoint,
    stdin: job.stdin,
    args: job.args,
    env: job.env,
    limits: resolved.limits,
    compileLimits: job.compileLimits,
    network: resolved.network,
    environment: resolved.environment,
    artifacts: job.artifacts,
    retryOnFailure: job.retryOnFailure,
    userId: who.userId,
    keyId: who.keyId ?? undefined,
    source: job.source,
    isolation: job.isolation ?? "namespaces",
    ...(resolved.judge ? { judge: resolved.judge } : {}),
  };
}
