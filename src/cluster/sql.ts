/** Small PostgreSQL helpers the cluster's queue, worker and reaper share. */
import type pg from "pg";
import type { NewEvent } from "../store/records.js";
import { safeParams } from "../store/pg/pool.js";

export type Sql = pg.Pool | pg.PoolClient;

/**
 * Advisory lock keys (pg_advisory_xact_lock): one per decision that must
 * see every other node's committed changes before it is taken.
 */
export const LOCKS = {
  /** The fair claim: per-user and cluster-wide caps are checked and taken in one step. */
  claim: 0x57_41_52_01,
  /** Queue caps at submit: counted and inserted in one step. */
  submit: 0x57_41_52_02,
  /** The reaper: one node at a time declares workers dead. */
  reaper: 0x57_41_52_03,
} as const;

/** Runs `fn` in one transaction on one pooled connection; rolls back on any throw. */
export async function transaction<T>(
  pool: pg.Pool,
  fn: (c: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const out = await fn(client);
    await client.query("COMMIT");
    return out;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * An audit event, written with the change it describes (same transaction).
 * Its message may quote what a sandbox produced (an analyser's finding): a
 * NUL in it would make PostgreSQL refuse the whole final write, and the run
 * would stay `running`; safeParams replaces it.
 */
export async function insertEvent(sql: Sql, e: NewEvent, at = Date.now()): Promise<void> {
  await sql.query(
    "INSERT INTO events (timestamp, execution_id, user_id, level, event, message, data) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    safeParams([
      at,
      e.executionId ?? null,
      e.userId ?? null,
      e.level,
      e.event,
      e.message,
      e.data ? JSON.stringify(e.data) : null,
    ]),
  );
}
