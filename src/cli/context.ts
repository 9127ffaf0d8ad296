/** What every CLI command builds first: config, logger, runtimes, sandbox host. */
import { createLogger, type Logger } from "../audit/logger.js";
import { loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { RuntimeRegistry } from "../runtimes/registry.js";
import { SandboxHost } from "../sandbox/host.js";

export interface GlobalOptions {
  config?: string;
  dataDir?: string;
  logLevel?: string;
}

export interface CliContext {
  config: Config;
  logger: Logger;
  registry: RuntimeRegistry;
}

export function createContext(
  options: GlobalOptions,
  defaultLogLevel = "warn",
  overrides: Record<string, unknown> = {},
): CliContext {
  const config = loadConfig({
    file: options.config,
    overrides: { dataDir: options.dataDir, logLevel: options.logLevel, ...overrides },
  });
  // One-shot commands stay quiet unless asked; the service logs at its configured level.
  const level =
    options.logLevel ?? (process.env.WARDEN_LOG_LEVEL ? config.logLevel : defaultLogLevel);
  const logger = createLogger(level as Config["logLevel"]);
  const registry = new RuntimeRegistry(config.sandbox.searchPath, config.runtimes);
  return { config, logger, registry };
}

/** The host for one command: a single run gains nothing from starting sandboxes ahead. */
export function openHost(ctx: CliContext, pool = false): Promise<SandboxHost> {
  const sandbox = ctx.config.sandbox;
  return SandboxHost.open({
    config: pool ? sandbox : { ...sandbox, pool: { ...sandbox.pool, enabled: false } },
    runDir: ctx.config.runDir,
    logger: ctx.logger,
    privateFiles: ctx.registry.privateFiles(),
  });
}
