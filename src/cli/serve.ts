/**
 * `warden serve`: the multi-tenant service on the embedded defaults (SQLite
 * in the data dir, in-process queue). This is the one place that handles
 * SIGTERM and SIGINT: stop intake, let running executions finish up to the
 * grace period, kill the rest, record every final state, exit.
 */
import { createServer } from "node:net";
import { resolve } from "node:path";
import { ENV } from "../config/env.js";
import { openWarden } from "../warden.js";
import { clusterProblems } from "../config/cluster-config.js";
import { buildServer } from "../http/server.js";
import { SCOPES } from "../store/keys.js";
import { createContext, type GlobalOptions } from "./context.js";
import { processLimitProblems, readHostCaps } from "./process-limits.js";

export interface ServeOptions extends GlobalOptions {
  port?: string;
  host?: string;
  /** all | api | worker (cluster.role, $WARDEN_ROLE). */
  role?: string;
}

/**
 * Why host:port cannot be listened on, or null. Checked before the data dir
 * is opened and before an admin key is minted: a second `warden serve` on a
 * busy port must not print a key that works nowhere.
 */
function portProblem(host: string, port: number): Promise<string | null> {
  if (port === 0) return Promise.resolve(null);
  return new Promise((resolveProblem) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => {
      const reasons: Record<string, string> = {
        EADDRINUSE: `port ${port} on ${host} is already in use (another warden serve?)`,
        EACCES: `no permission to listen on port ${port}`,
        EADDRNOTAVAIL: `${host} is not an address of this machine`,
      };
      resolveProblem(
        reasons[error.code ?? ""] ?? `cannot listen on ${host}:${port}: ${error.message}`,
      );
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolveProblem(null)));
  });
}

export async function serveCommand(options: ServeOptions): Promise<number> {
  const overrides: Record<string, unknown> = {};
  if (options.port !== undefined) overrides["server.port"] = Number(options.port);
  if (options.host !== undefined) overrides["server.host"] = options.host;
  if (options.role !== undefined) overrides["cluster.role"] = options.role;
  const ctx = createContext({ ...options, logLevel: options.logLevel }, "info", overrides);
  const { config, logger } = ctx;
  // A half-configured cluster node says what is missing before it opens anything.
  const problems = clusterProblems(config.cluster);
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`warden: ${p}\n`);
    return 1;
  }
  if (config.cluster.role === "api") {
    process.stderr.write(
      "warden: --role api needs the cluster HTTP wiring (API node routes), which this build does not include\n",
    );
    return 1;
  }
  const dataDir = resolve(config.dataDir);
  const problem = await portProblem(config.server.host, config.server.port);
  if (problem) {
    process.stderr.write(
      `warden: ${problem}: free it, or choose another port (--port, $WARDEN_PORT or server.port)\n`,
    );
    return 1;
  }
  for (const problem of processLimitProblems(config, readHostCaps())) logger.warn(problem);
  const warden = await openWarden({ config, logger });
  const keys = warden.store.keys;
  const app = await buildServer({ ...warden, config, logger, service: warden, keys });
  const address = await app.listen({ host: config.server.host, port: config.server.port });
  // Only once the port is ours: a key is printed for a server that runs.
  const envToken = process.env[ENV.adminToken];
  if (envToken) await keys.ensureEnvAdmin(envToken);
  else if (!(await keys.hasAdmin())) {
    const { token } = await keys.create({
      name: "admin (first start)",
      scopes: [...SCOPES],
      userId: "admin",
    });
    process.stderr.write(
      `\n  Warden admin key (shown once; store it now):\n\n    ${token}\n\n  Make more with: warden keys create --name NAME --scopes execute\n\n`,
    );
  }
  logger.info({ address, dataDir, cgroups: warden.host.cgroupLayout.mode }, "warden serving");

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, graceSeconds: config.server.shutdownGracePeriod }, "shutting down");
      void (async () => {
        const closing = app.close(); // stop accepting; in-flight requests finish with their executions
        await warden.shutdown(config.server.shutdownGracePeriod * 1000);
        // Every execution has ended; keep-alive sockets that went idle since close() began go too.
        app.server.closeIdleConnections();
        const stragglers = setTimeout(() => app.server.closeAllConnections(), 2000);
        await closing;
        clearTimeout(stragglers);
        logger.info("stopped");
        resolveExit(0);
      })();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
