/**
 * What the Judge0 adapter keeps beside an execution record: the submission as
 * the client sent it (source, stdin, expected output, options), keyed by its
 * token, which is the execution's id. A row goes when its execution record
 * is expired (a trigger on `executions` in both stores), so it lives exactly
 * as long as the record it describes.
 */

/** The submission's own fields, in Judge0's names and units, decoded (never base64). */
export interface Judge0Fields {
  source_code: string | null;
  stdin: string | null;
  expected_output: string | null;
  number_of_runs: number;
  cpu_time_limit: number;
  cpu_extra_time: number;
  wall_time_limit: number;
  memory_limit: number;
  stack_limit: number;
  max_processes_and_or_threads: number;
  enable_per_process_and_thread_time_limit: boolean;
  enable_per_process_and_thread_memory_limit: boolean;
  max_file_size: number;
  compiler_options: string | null;
  command_line_arguments: string | null;
  redirect_stderr_to_stdout: boolean;
  callback_url: string | null;
  /** The zip as the client sent it, base64. */
  additional_files: string | null;
  enable_network: boolean;
}

export interface Judge0Submission {
  token: string;
  userId: string;
  languageId: number;
  createdAt: number;
  fields: Judge0Fields;
}

export interface Judge0Store {
  save(s: Judge0Submission): Promise<void>;
  get(token: string): Promise<Judge0Submission | null>;
  /** The submissions among `tokens` that exist (any order). */
  getMany(tokens: readonly string[]): Promise<Judge0Submission[]>;
}

export interface Judge0Row {
  token: string;
  user_id: string;
  language_id: number;
  created_at: number;
  fields: string;
}

export function toJudge0Submission(r: Judge0Row): Judge0Submission {
  return {
    token: r.token,
    userId: r.user_id,
    languageId: r.language_id,
    createdAt: r.created_at,
    fields: JSON.parse(r.fields) as Judge0Fields,
  };
}
