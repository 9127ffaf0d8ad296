/**
 * Judging (test-case runs): what a request asks — cases, how outputs are
 * compared, when to stop — and what each case and the whole run come to.
 * REST, the CLI, the library, MCP and the Judge0 adapter all speak these
 * shapes; the engine (src/judging/) fills them.
 */
import { z } from "zod";
import { RequestLimitsSchema } from "./limits.js";
import { RunStatusSchema } from "./status.js";

/** How one case ended, from the program's run and the comparison. */
export const VERDICTS = [
  "accepted",
  "wrong_answer",
  "time_limit",
  "memory_limit",
  "output_limit",
  "runtime_error",
  "compile_error",
  "skipped",
  "error",
] as const;
export const VerdictSchema = z
  .enum(VERDICTS)
  .describe(
    "accepted; wrong_answer (output differs, or the checker said so); time_limit (wall or CPU); memory_limit; output_limit; runtime_error (non-zero exit, a signal, a full disk); compile_error (the whole run); skipped (not run after a failure with stopOnFirstFailure); error (Warden's own fault, or the checker failed).",
  );
export type Verdict = z.infer<typeof VerdictSchema>;

/** One test case as a request gives it; byte bounds are checked against the config. */
export const TestCaseInputSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9._-]+$/, "name: letters, digits, '.', '_' and '-' only")
      .optional()
      .describe("Shown in results; default: its 1-based index."),
    stdin: z.string().optional(),
    args: z.array(z.string().max(4096)).max(256).optional(),
    expectedOutput: z
      .string()
      .optional()
      .describe("What stdout must be (compared per `compare`); absent: any output passes."),
    limits: RequestLimitsSchema.extend({ timeout: z.number().positive().optional() })
      .strict()
      .optional()
      .describe("This case's own limits, within the server's maxima; default: the run's."),
    points: z.number().min(0).max(1_000_000).optional().describe("Weight in the score; default 1."),
  })
  .strict();
export type TestCaseInput = z.infer<typeof TestCaseInputSchema>;

/** A custom checker: a program of its own, in its own sandbox. */
export const CheckerSchema = z
  .object({
    language: z.string().min(1).max(64),
    code: z.string().min(1),
    limits: RequestLimitsSchema.extend({ timeout: z.number().positive().optional() })
      .strict()
      .optional(),
  })
  .strict()
  .describe(
    "Gets the case's input, expected and actual output as files input.txt, expected.txt, actual.txt in its working directory; exit 0 accepts, exit 1 is wrong_answer, anything else is error. Its first line of stdout is the case's message.",
  );

/** How outputs are compared (ComparisonSchema's `mode`). */
export const COMPARE_MODES = [
  "exact",
  "trailing_whitespace",
  "tokens",
  "float",
  "checker",
] as const;

export const ComparisonSchema = z
  .object({
    mode: z
      .enum(COMPARE_MODES)
      .default("trailing_whitespace")
      .describe(
        "exact bytes; trailing_whitespace: each line's trailing spaces and trailing empty lines ignored (default); tokens: whitespace-separated tokens; float: tokens, numbers within tolerance; checker: a program decides.",
      ),
    absoluteTolerance: z.number().min(0).optional().describe("float: |a - e| <= this passes."),
    relativeTolerance: z
      .number()
      .min(0)
      .optional()
      .describe("float: |a - e| <= this × |e| passes."),
    checker: CheckerSchema.optional().describe("Required when mode is checker."),
  })
  .strict();
export type Comparison = z.infer<typeof ComparisonSchema>;

/** The judging fields of an execution request (added to CreateExecutionSchema). */
export const JudgeRequestFields = {
  tests: z
    .array(TestCaseInputSchema)
    .min(1)
    .optional()
    .describe(
      "Run the program once per case (compiled once), each in a fresh sandbox; results per case.",
    ),
  testsFrom: z
    .string()
    .regex(/^suite_[0-9A-Z]{26}$/, "testsFrom: not a test-suite id")
    .optional()
    .describe("A test suite uploaded with POST /v1/test-suites (instead of `tests`)."),
  compare: ComparisonSchema.optional(),
  stopOnFirstFailure: z
    .boolean()
    .optional()
    .describe("Skip the remaining cases after the first that is not accepted."),
};

export const TestCaseResultSchema = z.object({
  index: z.number().int().describe("0-based position in the suite."),
  name: z.string(),
  verdict: VerdictSchema,
  status: RunStatusSchema.nullable().describe("How the program's run ended (null: not run)."),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  timeMs: z.number().describe("Wall-clock time of the run."),
  cpuTimeMs: z.number(),
  peakMemoryBytes: z.number(),
  stdout: z.string().describe("The start of what the program printed (bounded)."),
  stderr: z.string().describe("The start of its stderr (bounded)."),
  truncated: z.object({ stdout: z.boolean(), stderr: z.boolean() }),
  diff: z
    .string()
    .nullable()
    .describe("wrong_answer: a short description of the first difference."),
  message: z.string().nullable().describe("The checker's message, or why the case is error."),
  points: z.number(),
});
export type TestCaseResult = z.infer<typeof TestCaseResultSchema>;

export const TestsSummarySchema = z
  .object({
    verdict: VerdictSchema.describe(
      "accepted when every case is; compile_error; otherwise the first failing case's verdict.",
    ),
    total: z.number().int(),
    passed: z.number().int(),
    failed: z.number().int(),
    skipped: z.number().int(),
    score: z.number().describe("Sum of the points of accepted cases."),
    maxScore: z.number(),
    cases: z.array(TestCaseResultSchema),
  })
  .describe("A test-case run's per-case verdicts and totals.");
export type TestsSummary = z.infer<typeof TestsSummarySchema>;
