/** How a program's run ended: the statuses every result and step shares. */
import { z } from "zod";

/** How a program's run ended, as the engine reports it. */
export const RUN_STATUSES = [
  "completed",
  "failed",
  "timeout",
  "memory_limit",
  "output_limit",
  "disk_limit",
  "killed",
  "error",
] as const;
export const RunStatusSchema = z
  .enum(RUN_STATUSES)
  .describe(
    "completed: exited 0; failed: exited non-zero or died of its own signal; timeout, memory_limit, output_limit, disk_limit: a limit ended it; killed: by an operator or the user; error: Warden's own fault.",
  );
export type RunStatus = z.infer<typeof RunStatusSchema>;
