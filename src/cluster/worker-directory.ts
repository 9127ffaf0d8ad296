/**
 * What API nodes read about workers: their rows in the `workers` table (each
 * worker writes its own, with every heartbeat) and the per-user counts that
 * placement and the admin view need. Read-only; a worker is "alive" when its
 * row says active or draining and its heartbeat is fresher than
 * `workerTimeoutMs` (the reaper marks it gone a little later).
 */
import type pg from "pg";

export interface WorkerRow {
  id: string;
  name: string;
  version: string;
  url: string;
  state: "active" | "draining" | "gone";
  startedAt: number;
  heartbeatAt: number;
  maxConcurrent: number;
  memoryBudgetMb: number;
  running: number;
  sessions: number;
  memoryReservedMb: number;
}

interface Row {
  id: string;
  name: string;
  version: string;
  url: string;
  state: string;
  started_at: string;
  heartbeat_at: string;
  max_concurrent: number;
  memory_budget_mb: number;
  running: number;
  sessions: number;
  memory_reserved_mb: number;
}

const COLUMNS = `id, name, version, url, state, started_at, heartbeat_at, max_concurrent,
  memory_budget_mb, running, sessions, memory_reserved_mb`;

function toWorker(r: Row): WorkerRow {
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    url: r.url,
    state: r.state as WorkerRow["state"],
    startedAt: Number(r.started_at),
    heartbeatAt: Number(r.heartbeat_at),
    maxConcurrent: r.max_concurrent,
    memoryBudgetMb: r.memory_budget_mb,
    running: r.running,
    sessions: r.sessions,
    memoryReservedMb: r.memory_reserved_mb,
  };
}

export class WorkerDirectory {
  constructor(
    private readonly pool: pg.Pool,
    readonly workerTimeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Alive: not gone, and heard from within workerTimeoutMs. */
  alive(w: WorkerRow | null): w is WorkerRow {
    return w !== null && w.state !== "gone" && this.now() - w.heartbeatAt <= this.workerTimeoutMs;
  }

  async get(id: string): Promise<WorkerRow | null> {
    const { rows } = await this.pool.query<Row>(`SELECT ${COLUMNS} FROM workers WHERE id = $1`, [
      id,
    ]);
    return rows[0] ? toWorker(rows[0]) : null;
  }

  /** Every worker row (gone ones too, for the admin view), by id. */
  async list(): Promise<WorkerRow[]> {
    const { rows } = await this.pool.query<Row>(`SELECT ${COLUMNS} FROM workers ORDER BY id`);
    return rows.map(toWorker);
  }

  /** Workers that may take new work: active, with a fresh heartbeat. */
  async active(): Promise<WorkerRow[]> {
    return (await this.list()).filter((w) => w.state === "active" && this.alive(w));
  }

  /** A user's sandboxes across the cluster: running executions plus live sessions. */
  async sandboxesOf(userId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM executions WHERE user_id = $1 AND status = 'running')
            + (SELECT count(*) FROM sessions WHERE user_id = $1 AND ended_at IS NULL) AS n`,
      [userId],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Per user: running executions and live sessions, across workers (the busiest first). */
  async perUser(limit = 1000): Promise<{ userId: string; running: number; sessions: number }[]> {
    const { rows } = await this.pool.query<{ user_id: string; running: string; sessions: string }>(
      `SELECT user_id, sum(running) AS running, sum(sessions) AS sessions FROM (
         SELECT user_id, count(*) AS running, 0 AS sessions FROM executions
           WHERE status = 'running' GROUP BY user_id
         UNION ALL
         SELECT user_id, 0, count(*) FROM sessions WHERE ended_at IS NULL GROUP BY user_id) t
       GROUP BY user_id ORDER BY sum(running) + sum(sessions) DESC, user_id LIMIT $1`,
      [limit],
    );
    return rows.map((r) => ({
      userId: r.user_id,
      running: Number(r.running),
      sessions: Number(r.sessions),
    }));
  }

  /** Executions waiting in the cluster queue. */
  async queued(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM executions WHERE status = 'queued'`,
    );
    return Number(rows[0]?.n ?? 0);
  }
}
