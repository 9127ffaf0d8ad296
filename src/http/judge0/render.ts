/**
 * A submission as Judge0 answers it: every attribute its serializer has,
 * `fields` choosing which (default eight, `*` all), text attributes base64
 * when asked. Without base64, output that was not valid UTF-8 cannot be
 * sent as JSON text: Judge0 refuses with its conversion error, and so does
 * this (Warden keeps undecodable bytes as U+FFFD, so that is what it looks for).
 */
import type { Judge0Submission } from "../../store/judge0.js";
import type { Judge0Outcome } from "./statuses.js";

/** Judge0's submission attributes, in its serializer's order. */
export const SUBMISSION_FIELDS = [
  "source_code",
  "language_id",
  "stdin",
  "expected_output",
  "stdout",
  "status_id",
  "created_at",
  "finished_at",
  "time",
  "memory",
  "stderr",
  "token",
  "number_of_runs",
  "cpu_time_limit",
  "cpu_extra_time",
  "wall_time_limit",
  "memory_limit",
  "stack_limit",
  "max_processes_and_or_threads",
  "enable_per_process_and_thread_time_limit",
  "enable_per_process_and_thread_memory_limit",
  "max_file_size",
  "compile_output",
  "exit_code",
  "exit_signal",
  "message",
  "wall_time",
  "compiler_options",
  "command_line_arguments",
  "redirect_stderr_to_stdout",
  "callback_url",
  "additional_files",
  "enable_network",
  "started_at",
  "queued_at",
  "updated_at",
  "queue_host",
  "execution_host",
  "status",
  "language",
] as const;
export type SubmissionField = (typeof SUBMISSION_FIELDS)[number];

export const DEFAULT_FIELDS: readonly SubmissionField[] = [
  "token",
  "time",
  "memory",
  "stdout",
  "stderr",
  "compile_output",
  "message",
  "status",
];

const TEXT_FIELDS = new Set<string>([
  "source_code",
  "stdin",
  "expected_output",
  "stdout",
  "stderr",
  "compile_output",
  "message",
]);
const KNOWN = new Set<string>(SUBMISSION_FIELDS);
/** A `fields` value longer than every field name together is not a list of them. */
const MAX_FIELDS_CHARS = 2048;

export class FieldsError extends Error {}

/** Judge0's `fields`: comma-separated names, `*` for all; unknown names refused (at most 10 echoed). */
export function parseFields(raw: unknown): readonly SubmissionField[] {
  if (raw === undefined || raw === null || raw === "") return DEFAULT_FIELDS;
  if (typeof raw !== "string" || raw.length > MAX_FIELDS_CHARS)
    throw new FieldsError(
      `invalid fields: fields must be a list of at most ${MAX_FIELDS_CHARS} characters`,
    );
  const names = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const invalid = names.filter((n) => n !== "*" && !KNOWN.has(n));
  if (invalid.length > 0) {
    const shown = invalid.slice(0, 10).map((n) => n.slice(0, 64));
    throw new FieldsError(
      `invalid fields: [${shown.join(", ")}${invalid.length > 10 ? ", ..." : ""}]`,
    );
  }
  if (names.includes("*")) return SUBMISSION_FIELDS;
  const chosen = [...new Set(names)] as SubmissionField[];
  return chosen.length > 0 ? chosen : DEFAULT_FIELDS;
}

export class Utf8Error extends Error {
  constructor() {
    super(
      "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter",
    );
  }
}

/** What a submission's view is made of. */
export interface SubmissionState {
  submission: Judge0Submission;
  languageName: string;
  outcome: Judge0Outcome;
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** Decimal attributes come as strings from Judge0 (Rails' BigDecimal): "5.0", "0.5". */
const decimal = (n: number): string => (Number.isInteger(n) ? n.toFixed(1) : String(n));

export function renderSubmission(
  s: SubmissionState,
  fields: readonly SubmissionField[],
  base64: boolean,
): Record<string, unknown> {
  const f = s.submission.fields;
  const o = s.outcome;
  const all: Record<SubmissionField, unknown> = {
    source_code: f.source_code,
    language_id: s.submission.languageId,
    stdin: f.stdin,
    expected_output: f.expected_output,
    stdout: o.stdout,
    status_id: o.status.id,
    created_at: s.createdAt,
    finished_at: o.status.id <= 2 ? null : s.finishedAt,
    time: o.time,
    memory: o.memory,
    stderr: o.stderr,
    token: s.submission.token,
    number_of_runs: f.number_of_runs,
    cpu_time_limit: decimal(f.cpu_time_limit),
    cpu_extra_time: decimal(f.cpu_extra_time),
    wall_time_limit: decimal(f.wall_time_limit),
    memory_limit: f.memory_limit,
    stack_limit: f.stack_limit,
    max_processes_and_or_threads: f.max_processes_and_or_threads,
    enable_per_process_and_thread_time_limit: f.enable_per_process_and_thread_time_limit,
    enable_per_process_and_thread_memory_limit: f.enable_per_process_and_thread_memory_limit,
    max_file_size: f.max_file_size,
    compile_output: o.compile_output,
    exit_code: o.exit_code,
    exit_signal: o.exit_signal,
    message: o.message,
    wall_time: o.wall_time,
    compiler_options: f.compiler_options,
    command_line_arguments: f.command_line_arguments,
    redirect_stderr_to_stdout: f.redirect_stderr_to_stdout,
    callback_url: f.callback_url,
    additional_files: f.additional_files,
    enable_network: f.enable_network,
    started_at: s.startedAt,
    queued_at: s.createdAt,
    updated_at: s.finishedAt ?? s.startedAt ?? s.createdAt,
    queue_host: null,
    execution_host: null,
    status: o.status,
    language: { id: s.submission.languageId, name: s.languageName },
  };
  const out: Record<string, unknown> = {};
  for (const name of fields) {
    let v = all[name];
    if (TEXT_FIELDS.has(name) && typeof v === "string") {
      if (base64) v = Buffer.from(v, "utf8").toString("base64");
      else if (v.includes("\uFFFD")) throw new Utf8Error();
    }
    out[name] = v;
  }
  return out;
}
