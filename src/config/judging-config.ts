/** Settings of test-case runs (`judging.*`; docs/judging.md). */
import { z } from "zod";

const MiB = 1024 * 1024;

export const JudgingConfigSchema = z
  .object({
    maxTests: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe("Most test cases in one run (`tests` or a suite)."),
    caseOutputBytes: z
      .number()
      .int()
      .min(0)
      .default(8 * 1024)
      .describe(
        "Bytes of each case's stdout and stderr kept in the result (the comparison sees the whole output, up to the run's outputBytes).",
      ),
    maxCaseInputBytes: z
      .number()
      .int()
      .min(0)
      .default(MiB)
      .describe("Largest stdin of one case given inline (bytes)."),
    maxExpectedOutputBytes: z
      .number()
      .int()
      .min(0)
      .default(MiB)
      .describe("Largest expectedOutput of one case (bytes), inline or in a suite."),
    maxTestsBytes: z
      .number()
      .int()
      .min(0)
      .default(8 * MiB)
      .describe("All inline cases' stdin and expectedOutput together (bytes)."),
    maxSuiteMb: z
      .number()
      .int()
      .min(1)
      .default(64)
      .describe("Largest uploaded test suite (MiB of tar archive)."),
    maxRunSeconds: z
      .number()
      .positive()
      .default(3600)
      .describe(
        "Wall time one test-case run may take in all (s): cases not started by then are skipped. It holds one slot, and a cpuSeconds quota counts it only when it ends.",
      ),
    maxSuiteStorageMbPerUser: z
      .number()
      .int()
      .min(1)
      .default(256)
      .describe(
        "Most MiB of test suites one user may have stored at once (they expire with artifacts); an upload past it is refused.",
      ),
    maxCompiledMb: z
      .number()
      .int()
      .min(1)
      .default(64)
      .describe(
        "Most a compile step may leave in the workspace (MiB); it is copied into every case's fresh sandbox. More is a compile_error.",
      ),
  })
  .strict();
export type JudgingConfig = z.infer<typeof JudgingConfigSchema>;
