/**
 * Judge0's information routes: languages (active, all, one), statuses,
 * about, version, config_info, and authenticate/authorize (which only say
 * whether the key is good, as Judge0's do).
 */
import type { FastifyInstance } from "fastify";
import type { Config } from "../../config/schema.js";
import { packageVersion } from "../../util/version.js";
import type { InstalledLanguage } from "./languages.js";
import { JUDGE0_STATUSES } from "./statuses.js";

/** The Judge0 CE API version whose wire format this adapter speaks. */
export const JUDGE0_API_VERSION = "1.13.1";

interface InfoOptions {
  route: (
    scope: "execute" | "any" | "admin",
    operationId: string,
    summary: string,
  ) => {
    config: { scope: "execute" | "any" | "admin"; judge0: boolean };
    schema: { tags: string[]; hide: boolean; operationId: string; summary: string };
  };
  languages: () => Promise<Map<number, InstalledLanguage>>;
  config: Config;
  callbacks: boolean;
}

/** Judge0's /config_info: its keys, Warden's values (maxima capped by Warden's own). */
export function configInfo(config: Config, callbacks: boolean): Record<string, unknown> {
  const j = config.judge0;
  return {
    maintenance_mode: false,
    enable_wait_result: true,
    enable_compiler_options: false,
    allowed_languages_for_compile_options: [],
    enable_command_line_arguments: true,
    enable_submission_delete: false,
    // Numbers, as clients' models require (the Python SDK's); Warden's own retry
    // schedule is the webhooks service's (docs/webhooks.md), not these.
    enable_callbacks: callbacks,
    callbacks_max_tries: callbacks ? config.webhooks.maxAttempts : 0,
    callbacks_timeout: callbacks ? Math.ceil(config.webhooks.timeoutMs / 1000) : 0,
    enable_additional_files: true,
    max_queue_size: config.maxQueueSize,
    cpu_time_limit: j.cpuTimeLimit,
    max_cpu_time_limit: Math.min(j.maxCpuTimeLimit, config.maxTimeout),
    cpu_extra_time: j.cpuExtraTime,
    max_cpu_extra_time: j.maxCpuExtraTime,
    wall_time_limit: Math.min(j.wallTimeLimit, config.maxTimeout),
    max_wall_time_limit: Math.min(j.maxWallTimeLimit, config.maxTimeout),
    memory_limit: Math.min(j.memoryLimitKb, config.maxMemoryMB * 1024),
    max_memory_limit: Math.min(j.maxMemoryLimitKb, config.maxMemoryMB * 1024),
    stack_limit: j.stackLimitKb,
    max_stack_limit: j.maxStackLimitKb,
    max_processes_and_or_threads: Math.min(j.maxProcessesAndOrThreads, config.maxPids),
    max_max_processes_and_or_threads: Math.min(j.maxMaxProcessesAndOrThreads, config.maxPids),
    enable_per_process_and_thread_time_limit: false,
    allow_enable_per_process_and_thread_time_limit: true,
    enable_per_process_and_thread_memory_limit: false,
    allow_enable_per_process_and_thread_memory_limit: true,
    max_file_size: j.maxFileSizeKb,
    max_max_file_size: j.maxMaxFileSizeKb,
    number_of_runs: j.numberOfRuns,
    max_number_of_runs: j.maxNumberOfRuns,
    redirect_stderr_to_stdout: false,
    max_extract_size: Math.min(j.maxExtractSizeKb, Math.floor((config.maxCodeBytes * 4) / 1024)),
    enable_batched_submissions: true,
    max_submission_batch_size: j.maxBatchSize,
    submission_cache_duration: 0,
    use_docs_as_homepage: false,
    allow_enable_network: false,
    enable_network: false,
    disable_implicit_base64_encoding: true,
  };
}

export async function judge0Info(app: FastifyInstance, o: InfoOptions): Promise<void> {
  const { route, languages, config, callbacks } = o;
  // Every id accepted (not archived), as Judge0 lists one per version: clients check membership
  // (the official Python SDK maps C++ to 52, C to 50...).
  app.get("/languages", route("any", "judge0Languages", "Judge0: languages"), async () =>
    [...(await languages()).values()]
      .filter((l) => !l.archived)
      .map((l) => ({ id: l.id, name: l.name })),
  );
  app.get(
    "/languages/all",
    route("any", "judge0AllLanguages", "Judge0: all languages, archived ids too"),
    async () =>
      [...(await languages()).values()].map((l) => ({
        id: l.id,
        name: l.name,
        is_archived: l.archived,
      })),
  );
  app.get<{ Params: { id: string } }>(
    "/languages/:id",
    route("any", "judge0Language", "Judge0: one language"),
    async (request, reply) => {
      const id = /^\d{1,9}$/.test(request.params.id) ? Number(request.params.id) : NaN;
      const l = (await languages()).get(id);
      if (!l)
        return reply
          .status(404)
          .send({ error: `language with id ${request.params.id.slice(0, 32)} not found` });
      return {
        id: l.id,
        name: l.name,
        is_archived: l.archived,
        source_file: l.sourceFile,
        compile_cmd: l.compileCmd,
        run_cmd: l.runCmd,
      };
    },
  );
  app.get(
    "/statuses",
    route("any", "judge0Statuses", "Judge0: statuses"),
    async () => JUDGE0_STATUSES,
  );
  app.get("/about", route("any", "judge0About", "Judge0: about"), async () => ({
    version: JUDGE0_API_VERSION,
    homepage: null,
    source_code: null,
    maintainer: `Warden ${packageVersion()} (Judge0 CE-compatible API)`,
  }));
  app.get(
    "/version",
    route("any", "judge0Version", "Judge0: API version"),
    async (_request, reply) => reply.type("text/plain; charset=utf-8").send(JUDGE0_API_VERSION),
  );
  app.get("/config_info", route("any", "judge0ConfigInfo", "Judge0: configuration"), async () =>
    configInfo(config, callbacks),
  );
  app.post(
    "/authenticate",
    route("any", "judge0Authenticate", "Judge0: is this key good"),
    async (_request, reply) => reply.status(200).send(),
  );
  app.post(
    "/authorize",
    route("admin", "judge0Authorize", "Judge0: is this an admin key"),
    async (_request, reply) => reply.status(200).send(),
  );
}
