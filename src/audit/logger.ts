import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

/**
 * Structured logs go to stderr, always: stdout belongs to `warden run --json`
 * and to the MCP stdio transport.
 */
export function createLogger(level: LevelWithSilent = "info"): Logger {
  return pino({ level, base: { service: "warden" } }, pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything, for library use and tests. */
export const silentLogger: Logger = pino({ level: "silent" });
