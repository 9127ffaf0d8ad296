/** Settings of pausing, snapshots and file watches in sessions (`sessions.*`; docs/pause.md). */
import { z } from "zod";

export const SessionsConfigSchema = z
  .object({
    pausedSnapshotAfter: z
      .number()
      .positive()
      .default(3600)
      .describe(
        "A session paused this long (s) is snapshotted and released: its sandbox ends, its memory is freed, and its info names the snapshot to start a new session from.",
      ),
    maxPausedPerUser: z
      .number()
      .int()
      .min(0)
      .default(3)
      .describe(
        "Paused sessions one user may hold. A paused session does not count in maxSessionsPerUser (it runs nothing) but keeps its memory and its place in maxSessions.",
      ),
    maxSnapshotMb: z
      .number()
      .int()
      .min(1)
      .default(512)
      .describe(
        "Largest snapshot (MiB of archive, counted by Warden as it arrives); a larger workspace is refused and nothing is kept.",
      ),
    maxSnapshotEntries: z
      .number()
      .int()
      .min(1)
      .default(100_000)
      .describe("Most files, directories and links in one snapshot."),
    maxSnapshotsPerUser: z
      .number()
      .int()
      .min(0)
      .default(10)
      .describe("Snapshots one user may keep; delete one to make another."),
    prestartContext: z
      .boolean()
      .default(true)
      .describe(
        "Start a new session's code context for its language as the session starts, in the background, so the first cell does not wait for the interpreter (IPython takes ~0.3 s); it then uses its memory (~50 MiB for IPython) even if no cell ever runs.",
      ),
    maxWatches: z
      .number()
      .int()
      .min(0)
      .default(8)
      .describe("File watches (GET /v1/sessions/:id/watch) open at once on one session."),
    maxContexts: z
      .number()
      .int()
      .min(0)
      .default(4)
      .describe(
        "Named code contexts (E2B's createCodeContext) one session may hold besides its default ones; each is a kernel of its own (~50 MiB for IPython).",
      ),
  })
  .strict();

export type SessionsConfig = z.infer<typeof SessionsConfigSchema>;
