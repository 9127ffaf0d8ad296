/**
 * A Judge0 submission, read with Judge0's rules (its Submission model's
 * validations, in its words: `{"field": ["message"]}` answered 422), and
 * translated into Warden's execution input. Every field Judge0 takes is
 * mapped, accepted and reported, or refused with a reason (docs/judge0.md);
 * none is read and silently dropped.
 */
import type { Config } from "../../config/schema.js";
import type { CreateExecutionInput } from "../../executions/request.js";
import type { Judge0Fields } from "../../store/judge0.js";
import type { Webhooks } from "../../webhooks/types.js";
import type { InstalledLanguage } from "./languages.js";
import { readZip, ZipError } from "./zip.js";

export type FieldErrors = Record<string, string[]>;

export interface ParsedSubmission {
  languageId: number;
  fields: Judge0Fields;
  input: CreateExecutionInput;
}

/** Text fields sent base64 when `base64_encoded=true`. */
export const BASE64_FIELDS = ["source_code", "stdin", "expected_output"] as const;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const MAX_OPTION_CHARS = 512;

/**
 * Splits a command line the way a POSIX shell splits words, without running
 * one: whitespace separates, single quotes keep everything, double quotes
 * keep all but `\"` and `\\`, a backslash outside quotes escapes the next
 * character. Nothing is expanded ($, backticks, globs stay literal).
 */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let word: string | null = null;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) word += line[++i]!;
      else word += c;
    } else if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      if (word !== null) out.push(word);
      word = null;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (c === "\\" && i + 1 < line.length) word = (word ?? "") + line[++i]!;
    else word = (word ?? "") + c;
  }
  if (quote) throw new Error(`unterminated ${quote} quote`);
  if (word !== null) out.push(word);
  return out;
}

/** Strict base64 (line breaks and spaces allowed, as Ruby's encoder writes them). */
export function decodeBase64(text: string): Buffer | null {
  const compact = text.replace(/[\r\n \t]/g, "");
  if (!BASE64.test(compact) || compact.length % 4 === 1) return null;
  return Buffer.from(compact, "base64");
}

/** What a submission needs besides its body. */
export interface SubmissionContext {
  config: Config;
  base64: boolean;
  /** Judge0 id → the language installed here. */
  installed: ReadonlyMap<number, InstalledLanguage>;
  webhooks?: Webhooks | undefined;
  /** The request's API key: deliveries are signed with its secret, so a callback needs one. */
  keyId?: string | undefined;
}

type Num = { min: number; minOpen?: boolean; max: number; int?: boolean };

export async function parseSubmission(
  body: unknown,
  ctx: SubmissionContext,
): Promise<{ ok: true; value: ParsedSubmission } | { ok: false; errors: FieldErrors }> {
  const errors: FieldErrors = {};
  const fail = (field: string, message: string): void => {
    (errors[field] ??= []).push(message);
  };
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return { ok: false, errors: { submission: ["must be a JSON object"] } };
  const b = body as Record<string, unknown>;
  const present = (k: string): boolean => b[k] !== undefined && b[k] !== null && b[k] !== "";
  const { config } = ctx;
  const j = config.judge0;

  const text = (field: string, maxBytes: number): string | null => {
    const v = b[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== "string") {
      fail(field, "must be a string");
      return null;
    }
    // Bounded before decoding: base64 is 4/3 of the bytes it carries.
    if (v.length > Math.ceil((maxBytes * 4) / 3) + 4096) {
      fail(field, `is too long (maximum is ${maxBytes} bytes)`);
      return null;
    }
    let value = v;
    if (ctx.base64 && (BASE64_FIELDS as readonly string[]).includes(field)) {
      const bytes = decodeBase64(v);
      if (!bytes) {
        fail(field, "is not valid base64 (base64_encoded=true)");
        return null;
      }
      value = bytes.toString("utf8");
    }
    if (Buffer.byteLength(value) > maxBytes) {
      fail(field, `is too long (maximum is ${maxBytes} bytes)`);
      return null;
    }
    return value;
  };
  const number = (field: string, fallback: number, r: Num): number => {
    const v = b[field];
    if (v === undefined || v === null || v === "") return fallback;
    const n =
      typeof v === "number"
        ? v
        : typeof v === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(v)
          ? Number(v)
          : NaN;
    if (!Number.isFinite(n)) fail(field, "is not a number");
    else if (r.int && !Number.isInteger(n)) fail(field, "must be an integer");
    else if (r.minOpen ? n <= r.min : n < r.min)
      fail(field, `must be greater than ${r.minOpen ? "" : "or equal to "}${r.min}`);
    else if (n > r.max) fail(field, `must be less than or equal to ${r.max}`);
    else return n;
    return fallback;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    const v = b[field];
    if (v === undefined || v === null || v === "") return fallback;
    if (v === true || v === "true" || v === 1 || v === "1") return true;
    if (v === false || v === "false" || v === 0 || v === "0") return false;
    fail(field, "is not a boolean");
    return fallback;
  };
  const option = (field: string): string | null => {
    const v = b[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== "string") fail(field, "must be a string");
    else if (v.length > MAX_OPTION_CHARS)
      fail(field, `is too long (maximum is ${MAX_OPTION_CHARS} characters)`);
    else return v;
    return null;
  };

  // Judge0's maxima, capped by Warden's own: the adapter never asks for more than REST may.
  const maxWall = Math.min(j.maxWallTimeLimit, config.maxTimeout);
  const maxMemoryKb = Math.min(j.maxMemoryLimitKb, config.maxMemoryMB * 1024);
  const maxPids = Math.min(j.maxMaxProcessesAndOrThreads, config.maxPids);

  const source = text("source_code", config.maxCodeBytes);
  if (!errors.source_code && (source === null || source.trim() === ""))
    fail("source_code", "can't be blank");
  let language: InstalledLanguage | undefined;
  const languageId = number("language_id", NaN, { min: 0, max: 2 ** 31, int: true });
  if (!present("language_id")) fail("language_id", "can't be blank");
  else if (!errors.language_id) {
    language = ctx.installed.get(languageId);
    if (!language) fail("language_id", `language with id ${String(b.language_id)} doesn't exist`);
  }
  const stdin = text("stdin", config.maxStdinBytes);
  const expected = text("expected_output", j.maxExpectedOutputBytes);
  const fields: Judge0Fields = {
    source_code: source,
    stdin,
    expected_output: expected,
    number_of_runs: number("number_of_runs", j.numberOfRuns, {
      min: 0,
      minOpen: true,
      max: j.maxNumberOfRuns,
      int: true,
    }),
    cpu_time_limit: number("cpu_time_limit", j.cpuTimeLimit, {
      min: 0,
      max: Math.min(j.maxCpuTimeLimit, config.maxTimeout),
    }),
    cpu_extra_time: number("cpu_extra_time", j.cpuExtraTime, { min: 0, max: j.maxCpuExtraTime }),
    wall_time_limit: number("wall_time_limit", Math.min(j.wallTimeLimit, maxWall), {
      min: 1,
      max: maxWall,
    }),
    // Warden's smallest memory limit is 16 MiB (Judge0's is 2048 KB).
    memory_limit: number("memory_limit", Math.min(j.memoryLimitKb, maxMemoryKb), {
      min: 16_384,
      max: maxMemoryKb,
      int: true,
    }),
    stack_limit: number("stack_limit", j.stackLimitKb, {
      min: 0,
      max: j.maxStackLimitKb,
      int: true,
    }),
    // Warden's smallest pids limit is 8 (a runtime's own threads need them).
    max_processes_and_or_threads: number(
      "max_processes_and_or_threads",
      Math.min(j.maxProcessesAndOrThreads, maxPids),
      { min: 8, max: maxPids, int: true },
    ),
    enable_per_process_and_thread_time_limit: bool(
      "enable_per_process_and_thread_time_limit",
      false,
    ),
    enable_per_process_and_thread_memory_limit: bool(
      "enable_per_process_and_thread_memory_limit",
      false,
    ),
    max_file_size: number("max_file_size", j.maxFileSizeKb, {
      min: 0,
      max: j.maxMaxFileSizeKb,
      int: true,
    }),
    compiler_options: option("compiler_options"),
    command_line_arguments: option("command_line_arguments"),
    redirect_stderr_to_stdout: bool("redirect_stderr_to_stdout", false),
    callback_url: option("callback_url"),
    additional_files: null,
    enable_network: bool("enable_network", false),
  };
  // Warden's compile commands are fixed per runtime; extra flags would need a checked allowlist per compiler.
  if (fields.compiler_options?.trim())
    fail("compiler_options", "setting compiler options is not allowed");
  // Warden gives no unrestricted network; egress is by domain allowlist on POST /v1/executions.
  if (fields.enable_network)
    fail(
      "enable_network",
      "enabling network is not allowed (Warden allows egress only to allowlisted domains: use POST /v1/executions with network.allow)",
    );
  let args: string[] = [];
  if (fields.command_line_arguments?.trim())
    try {
      args = splitArgs(fields.command_line_arguments);
    } catch (e) {
      fail("command_line_arguments", (e as Error).message);
    }
  if (fields.callback_url?.trim()) {
    if (!ctx.webhooks) fail("callback_url", "setting callback is not allowed");
    else if (!ctx.keyId) fail("callback_url", "needs a request made with an API key");
    else
      try {
        fields.callback_url = await ctx.webhooks.checkUrl(fields.callback_url, "callback_url");
      } catch (e) {
        fail("callback_url", (e as Error).message.replace(/^callback_url:\s*/, ""));
      }
  } else fields.callback_url = null;

  const files: NonNullable<CreateExecutionInput["files"]> = [];
  if (present("additional_files") && language) {
    const raw = b.additional_files;
    const maxZipBytes = config.maxCodeBytes * 4;
    const zip =
      typeof raw === "string" && raw.length <= Math.ceil((maxZipBytes * 4) / 3) + 4096
        ? decodeBase64(raw)
        : null;
    if (typeof raw !== "string")
      fail("additional_files", "must be a base64 string (a zip archive)");
    else if (!zip)
      fail("additional_files", `is not valid base64 or is larger than ${maxZipBytes} bytes`);
    else
      try {
        const entries = readZip(zip, {
          maxEntries: config.maxFiles - 1,
          maxTotalBytes: Math.min(
            j.maxExtractSizeKb * 1024,
            config.maxCodeBytes * 4 - Buffer.byteLength(source ?? ""),
          ),
        });
        // As `unzip -n` after the source is written: the submission's own source wins.
        for (const e of entries)
          if (e.path !== language.sourceFile)
            files.push({ path: e.path, content: e.content.toString("base64"), encoding: "base64" });
        fields.additional_files = raw;
      } catch (e) {
        if (!(e instanceof ZipError)) throw e;
        fail("additional_files", e.message);
      }
  }
  if (Object.keys(errors).length > 0 || !language) return { ok: false, errors };

  const runs = fields.number_of_runs;
  const cpuMs =
    fields.cpu_time_limit > 0
      ? Math.ceil((fields.cpu_time_limit + fields.cpu_extra_time) * 1000)
      : undefined;
  // Judged by Warden's engine when the verdict must be in the record itself:
  // several runs, or a callback rendered from the record alone.
  const judged = runs > 1 || (fields.callback_url !== null && expected !== null);
  const input: CreateExecutionInput = {
    language: language.language,
    ...(files.length > 0
      ? {
          files: [
            { path: language.sourceFile, content: source!, encoding: "utf8" as const },
            ...files,
          ],
          entrypoint: language.sourceFile,
        }
      : { code: source! }),
    ...(judged
      ? {
          tests: Array.from({ length: runs }, () => ({
            ...(stdin !== null ? { stdin } : {}),
            args,
            ...(expected !== null ? { expectedOutput: expected } : {}),
          })),
          compare: { mode: "trailing_whitespace" as const },
          stopOnFirstFailure: true,
        }
      : { ...(stdin !== null ? { stdin } : {}), args }),
    timeout: fields.wall_time_limit,
    limits: {
      memoryMb: Math.ceil(fields.memory_limit / 1024),
      pids: fields.max_processes_and_or_threads,
      ...(cpuMs !== undefined ? { cpuTimeMs: cpuMs } : {}),
    },
    retryOnFailure: true,
    wait: true,
    // callback_url is registered by the route in Judge0's format, not as a Warden callbackUrl.
  };
  return { ok: true, value: { languageId, fields, input } };
}
