/**
 * The PostgreSQL connection pool and the two things every PG store shares:
 * one transaction helper, and the boundary that makes any string safe to send.
 */
import pg from "pg";
import type { Logger } from "../../audit/logger.js";

/** Connections per process: enough for an API node's bursts, small against max_connections. */
const POOL_MAX = 10;
/** No statement may hold a connection (and its locks) longer than this. */
const STATEMENT_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * Times are epoch ms in `bigint` columns, and counts come back as bigint: as
 * JavaScript numbers (exact below 2^53, which epoch ms stay under for ages).
 * Set on this pool's clients only, not on the process-wide `pg.types`.
 */
const toNumber = (value: string): number => Number(value);
const types: pg.CustomTypesConfig = {
  getTypeParser(oid: number, format?: "text" | "binary"): unknown {
    if (oid === INT8_OID || oid === NUMERIC_OID) return toNumber;
    return format === "binary"
      ? pg.types.getTypeParser(oid, "binary")
      : pg.types.getTypeParser(oid);
  },
};

export interface PoolOptions {
  url: string;
  /** Shows in pg_stat_activity (the node's role). */
  applicationName?: string | undefined;
  logger?: Logger | undefined;
}

export function createPool(o: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: o.url,
    max: POOL_MAX,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    application_name: o.applicationName ?? "warden",
    types,
  });
  // An idle connection that breaks (the server restarted) is an event, not a crash.
  pool.on("error", (error) => o.logger?.warn({ err: error }, "PostgreSQL connection lost"));
  return pool;
}

/**
 * PostgreSQL refuses a NUL character in any text value (and would fail the
 * whole statement): a hostile program's name, message or label could so make
 * an audit event or a record unwritable. Every string parameter passes here;
 * NUL becomes U+FFFD, as undecodable output does. Bytes (Buffer) pass as is.
 */
export function safeParams(params: readonly unknown[]): unknown[] {
  return params.map((p) =>
    typeof p === "string" && p.includes("\0") ? p.replaceAll("\0", "\uFFFD") : p,
  );
}

/** Something that runs a query: the pool, or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, "query"> | pg.PoolClient;

/** One query with its string parameters made safe (see safeParams). */
export async function query<R extends pg.QueryResultRow = pg.QueryResultRow>(
  on: Queryable,
  sql: string,
  params: readonly unknown[] = [],
): Promise<pg.QueryResult<R>> {
  return on.query<R>(sql, safeParams(params));
}

/**
 * Runs `fn` in one transaction on one connection: committed when it resolves,
 * rolled back when it throws (the error passes on). A connection whose
 * rollback failed is discarded, not returned to the pool.
 */
export async function transaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch((rollback: Error) => (broken = rollback));
    throw error;
  } finally {
    client.release(broken);
  }
}
