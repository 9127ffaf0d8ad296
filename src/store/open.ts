/**
 * Opens the configured store: PostgreSQL when a database URL is set (a
 * cluster's shared state), otherwise SQLite in the data dir (the single node,
 * unchanged). Either way its schema is migrated before it is returned.
 */
import { resolve } from "node:path";
import type { Logger } from "../audit/logger.js";
import { SqliteStore } from "./sqlite/store.js";
import type { Store } from "./store.js";

export interface OpenStoreOptions {
  /** Where SQLite keeps its file and artifacts (single node). */
  dataDir: string;
  /** `postgres://…`: use PostgreSQL instead (cluster.databaseUrl / WARDEN_DATABASE_URL). */
  databaseUrl?: string | undefined;
  /** Names this process's connections in pg_stat_activity (e.g. the node's role). */
  applicationName?: string | undefined;
  /** Where a lost PostgreSQL connection is reported. */
  logger?: Logger | undefined;
}

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  if (options.databaseUrl) {
    // Loaded only when asked for: a single node never loads the PostgreSQL client.
    const { PgStore } = await import("./pg/store.js");
    return PgStore.open({
      url: options.databaseUrl,
      applicationName: options.applicationName,
      logger: options.logger,
    });
  }
  return new SqliteStore(resolve(options.dataDir));
}

/**
 * The configured database URL (`cluster.databaseUrl`), or undefined for the
 * single node. Read without depending on the cluster config's shape.
 */
export function databaseUrlOf(config: object): string | undefined {
  const cluster = (config as { cluster?: { databaseUrl?: unknown } }).cluster;
  return typeof cluster?.databaseUrl === "string" && cluster.databaseUrl
    ? cluster.databaseUrl
    : undefined;
}
