/**
 * The Judge0-compatible API (`judge0.*`; docs/judge0.md). Defaults and maxima
 * are Judge0 CE's own (its `/config_info`), in Judge0's units; each maximum is
 * further capped by Warden's own limit of the same kind (maxTimeout,
 * maxMemoryMB, maxPids), so the adapter can never ask for more than REST can.
 */
import { z } from "zod";

const seconds = (d: number, what: string) =>
  z.number().positive().max(86_400).default(d).describe(what);
const int = (d: number, min: number, what: string) =>
  z.number().int().min(min).default(d).describe(what);

export const Judge0ConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe("Serve Judge0 CE's API under /judge0."),
    atRoot: z
      .boolean()
      .default(false)
      .describe(
        "Serve it at / too (/submissions, /languages...), for clients whose base URL cannot carry a path.",
      ),
    maxBatchSize: int(20, 1, "Most submissions in one batch (create or get)."),
    cpuTimeLimit: seconds(5, "cpu_time_limit when a submission gives none (s)."),
    maxCpuTimeLimit: seconds(15, "Largest cpu_time_limit (s)."),
    cpuExtraTime: z
      .number()
      .min(0)
      .max(3600)
      .default(1)
      .describe("cpu_extra_time when none is given (s): the run is killed at limit + extra."),
    maxCpuExtraTime: z.number().min(0).max(3600).default(5).describe("Largest cpu_extra_time (s)."),
    wallTimeLimit: seconds(10, "wall_time_limit when none is given (s)."),
    maxWallTimeLimit: seconds(20, "Largest wall_time_limit (s)."),
    memoryLimitKb: int(128_000, 16_384, "memory_limit when none is given (KB)."),
    maxMemoryLimitKb: int(512_000, 16_384, "Largest memory_limit (KB)."),
    stackLimitKb: int(64_000, 0, "stack_limit reported when none is given (KB; not enforced)."),
    maxStackLimitKb: int(128_000, 0, "Largest stack_limit accepted (KB)."),
    maxProcessesAndOrThreads: int(60, 8, "max_processes_and_or_threads when none is given."),
    maxMaxProcessesAndOrThreads: int(120, 8, "Largest max_processes_and_or_threads."),
    maxFileSizeKb: int(1024, 0, "max_file_size reported when none is given (KB)."),
    maxMaxFileSizeKb: int(4096, 0, "Largest max_file_size accepted (KB)."),
    numberOfRuns: int(1, 1, "number_of_runs when none is given."),
    maxNumberOfRuns: int(20, 1, "Largest number_of_runs."),
    maxExtractSizeKb: int(
      10_240,
      1,
      "Largest total size of additional_files once unzipped (KB); also capped by 4 × maxCodeBytes.",
    ),
    maxExpectedOutputBytes: int(1024 * 1024, 0, "Largest expected_output (bytes)."),
  })
  .strict();

export type Judge0Config = z.infer<typeof Judge0ConfigSchema>;
