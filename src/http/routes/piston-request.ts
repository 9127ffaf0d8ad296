/**
 * A Piston v2 execute request, read with Piston's own rules (engineer-man/piston
 * api/src/api/v2.js and job.js) and translated into Warden's execution input.
 * Every field Piston accepts is honoured or refused, never read and dropped:
 *
 * | Piston (units)                    | Warden                                     |
 * |-----------------------------------|--------------------------------------------|
 * | run_timeout (ms)                  | timeout (s), wall clock of the run         |
 * | run_cpu_time (ms)                 | limits.cpuTimeMs, the run's whole cgroup   |
 * | run_memory_limit (bytes)          | limits.memoryMb, rounded up to whole MiB   |
 * | compile_timeout (ms)              | compileLimits.timeout (s)                  |
 * | compile_cpu_time (ms)             | compileLimits.cpuTimeMs                    |
 * | compile_memory_limit (bytes)      | compileLimits.memoryMb, rounded up to MiB  |
 * | files[].name/content/encoding     | files (hex becomes base64); the first utf8 |
 * |                                   | file is the entry point, as in Piston      |
 * | stdin, args                       | stdin (a final newline added, as Piston    |
 * |                                   | does), args                                |
 *
 * Absent, null, 0 or -1 mean "the server's own limit" (Piston: 0 is unset, -1
 * no limit beyond the configured one). Other negatives are refused, as is a
 * value over Warden's maximum, with Piston's own message naming the field.
 */
import type { Config } from "../../config/schema.js";
import type { CreateExecutionInput } from "../../executions/request.js";
import type { RuntimeDefinition } from "../../config/runtime-definition.js";

const MiB = 1024 * 1024;
/** Warden's smallest memory limit (limits.memoryMb's minimum). */
const MIN_MEMORY_MB = 16;

export const PISTON_LIMITS = [
  "run_timeout",
  "compile_timeout",
  "run_cpu_time",
  "compile_cpu_time",
  "run_memory_limit",
  "compile_memory_limit",
] as const;
type PistonLimit = (typeof PISTON_LIMITS)[number];

/** A refusal, answered as Piston does: 400 `{message}`. */
export class PistonRequestError extends Error {}

interface PistonFile {
  name?: unknown;
  content?: unknown;
  encoding?: unknown;
}

/** The configured maximum of each Piston limit, in Piston's units. */
export function pistonMaxima(config: Config): Record<PistonLimit, number> {
  const ms = config.maxTimeout * 1000;
  const bytes = config.maxMemoryMB * MiB;
  return {
    run_timeout: ms,
    compile_timeout: ms,
    run_cpu_time: ms,
    compile_cpu_time: ms,
    run_memory_limit: bytes,
    compile_memory_limit: bytes,
  };
}

/** The limits a request set, in Piston's units; unset (absent, null, 0, -1) ones left out. */
function readLimits(
  body: Record<string, unknown>,
  config: Config,
): Partial<Record<PistonLimit, number>> {
  const max = pistonMaxima(config);
  const set: Partial<Record<PistonLimit, number>> = {};
  for (const name of PISTON_LIMITS) {
    const v = body[name];
    if (v === undefined || v === null || v === 0 || v === -1) continue;
    if (typeof v !== "number" || !Number.isFinite(v))
      throw new PistonRequestError(`If specified, ${name} must be a number`);
    if (v > max[name])
      throw new PistonRequestError(`${name} cannot exceed the configured limit of ${max[name]}`);
    if (v < 0) throw new PistonRequestError(`${name} must be non-negative (or -1: no limit)`);
    if (name.endsWith("memory_limit") && v < MIN_MEMORY_MB * MiB)
      throw new PistonRequestError(`${name} must be at least ${MIN_MEMORY_MB * MiB} bytes`);
    set[name] = v;
  }
  return set;
}

/** Piston's files, stdin, args and limits as Warden's execution input. */
export function pistonInput(
  body: Record<string, unknown>,
  files: unknown[],
  def: RuntimeDefinition,
  config: Config,
): CreateExecutionInput {
  const { stdin, args } = body;
  if (files.length > config.maxFiles)
    throw new PistonRequestError(`files cannot have more than ${config.maxFiles} entries`);
  const decoded: NonNullable<CreateExecutionInput["files"]> = [];
  let entrypoint: string | undefined;
  for (const [i, f] of (files as PistonFile[]).entries()) {
    if (typeof f !== "object" || f === null || typeof f.content !== "string")
      throw new PistonRequestError(`files[${i}].content is required as a string`);
    const encoding = f.encoding === "base64" || f.encoding === "hex" ? f.encoding : "utf8";
    const path =
      typeof f.name === "string" && f.name ? f.name : i === 0 ? def.fileName : `file${i}.code`;
    // Piston runs its first utf8 file; the others are data or modules.
    if (encoding === "utf8") entrypoint ??= path;
    decoded.push(
      encoding === "hex"
        ? { path, content: Buffer.from(f.content, "hex").toString("base64"), encoding: "base64" }
        : { path, content: f.content, encoding },
    );
  }
  if (entrypoint === undefined)
    throw new PistonRequestError("files must include at least one utf8 encoded file");
  if (stdin !== undefined && stdin !== null && typeof stdin !== "string")
    throw new PistonRequestError("stdin must be a string");
  if (
    args !== undefined &&
    args !== null &&
    (!Array.isArray(args) || !args.every((a) => typeof a === "string"))
  )
    throw new PistonRequestError("args must be an array of strings");
  const l = readLimits(body, config);
  const mb = (bytes: number | undefined): number | undefined =>
    bytes === undefined ? undefined : Math.ceil(bytes / MiB);
  const compileLimits = {
    ...(l.compile_timeout ? { timeout: l.compile_timeout / 1000 } : {}),
    ...(l.compile_cpu_time ? { cpuTimeMs: Math.ceil(l.compile_cpu_time) } : {}),
    ...(l.compile_memory_limit ? { memoryMb: mb(l.compile_memory_limit) } : {}),
  };
  const runLimits = {
    ...(l.run_cpu_time ? { cpuTimeMs: Math.ceil(l.run_cpu_time) } : {}),
    ...(l.run_memory_limit ? { memoryMb: mb(l.run_memory_limit) } : {}),
  };
  // Piston gives every program a stdin that ends with a newline.
  const input = typeof stdin === "string" ? stdin : "";
  return {
    language: def.language,
    files: decoded,
    entrypoint,
    stdin: input.endsWith("\n") ? input : `${input}\n`,
    args: args ?? [],
    timeout: l.run_timeout ? l.run_timeout / 1000 : undefined,
    limits: Object.keys(runLimits).length > 0 ? runLimits : undefined,
    compileLimits: Object.keys(compileLimits).length > 0 ? compileLimits : undefined,
    retryOnFailure: true,
    wait: true,
  };
}
