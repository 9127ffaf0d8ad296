/**
 * `warden bench`, warm path: a call into a live session (a Python cell, a
 * shell command through the agent) against a bare spawn of the same work on
 * the host, measured in the same run. This is what a client pays per step
 * once its sandbox exists, next to the one-shot cost measured above; and
 * what it pays before that: a new session, its first cell, a pause cycle.
 */
import type { Config } from "../config/schema.js";
import type { Logger } from "../audit/logger.js";
import type { SandboxHost } from "../sandbox/host.js";
import { SessionManager } from "../sessions/manager.js";
import { bareSpawn, round, stats, timed } from "./measure.js";

export interface WarmRow {
  case: string;
  bareMedianMs: number;
  sessionMedianMs: number;
  ratio: number;
}

export async function measureWarm(
  config: Config,
  host: SandboxHost,
  logger: Logger,
  tools: { python: string | null; sh: string },
  runs: number,
): Promise<WarmRow[]> {
  const sessions = new SessionManager(config, host, logger, { audit: () => undefined });
  const rows: WarmRow[] = [];
  try {
    const s = await sessions.create("bench", { limits: { memoryMb: 256 } });
    const cases: { name: string; bare: string[]; call: () => Promise<unknown> }[] = [
      {
        name: "command `true` (agent, /bin/sh -c)",
        bare: [tools.sh, "-c", "true"],
        call: () => sessions.command(s.id, "bench", { command: "true" }),
      },
    ];
    if (tools.python)
      cases.push({
        name: "python cell `x = 1` vs python3 -c",
        bare: [tools.python, "-c", "x = 1"],
        call: () => sessions.run(s.id, "bench", { code: "x = 1" }),
      });
    // What a new client pays before its first step, and a pause cycle (the
    // cgroup freezer), once each per run: fewer runs, they are heavier.
    const heavy = Math.min(runs, 10);
    const fresh = async (cell: boolean): Promise<void> => {
      const t = await sessions.create("bench", { limits: { memoryMb: 256 } });
      if (cell) await sessions.run(t.id, "bench", { code: "x = 1" });
      await sessions.destroy(t.id, "bench", "bench");
    };
    const starts: typeof cases = [
      {
        name: "new session, ready (+ its teardown)",
        bare: cases[0]!.bare,
        call: () => fresh(false),
      },
      {
        name: "pause + resume of a live session",
        bare: cases[0]!.bare,
        call: async () => {
          await sessions.pause(s.id, "bench");
          await sessions.resume(s.id, "bench");
        },
      },
    ];
    if (tools.python)
      starts.push({
        name: "new session + first python cell vs python3 -c",
        bare: [tools.python, "-c", "x = 1"],
        call: () => fresh(true),
      });
    for (const c of [...cases, ...starts]) {
      const n = starts.includes(c) ? heavy : runs;
      await c.call(); // starts the context
      const b: number[] = [];
      const w: number[] = [];
      for (let i = 0; i < n; i++) {
        b.push(await timed(() => bareSpawn(c.bare)));
        w.push(await timed(c.call));
      }
      const bareMedianMs = stats(b).medianMs;
      const sessionMedianMs = stats(w).medianMs;
      rows.push({
        case: c.name,
        bareMedianMs,
        sessionMedianMs,
        ratio: round(sessionMedianMs / bareMedianMs),
      });
    }
  } finally {
    await sessions.closeAll();
  }
  return rows;
}
