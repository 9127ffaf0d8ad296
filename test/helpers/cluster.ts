/**
 * A cluster for tests: one API node and N workers as real
 * `node bin/warden.js serve --role ...` processes (src/cli/local-cluster.ts),
 * on a fresh PostgreSQL database and a private redis-server, each node with
 * its own data dir, run dir, cgroup parent, uid range and ports. Everything
 * goes through the API node as a client would; `sql()` reads the shared
 * database to check what the API does not show (which worker ran what).
 * `close()` always leaves nothing: no process, cgroup, temp dir, database.
 */
import { basename } from "node:path";
import pg from "pg";
import { LocalCluster, type LocalClusterOptions } from "../../src/cli/local-cluster.js";
import {
  cgroupDirs,
  processesInUidRange,
  stopNode,
  tail,
  type ClusterWorkerView,
  type LocalNode,
  type SweepReport,
} from "../../src/cli/local-nodes.js";
import { TEST_DATABASE_URL } from "./postgres.js";

export type { ClusterWorkerView, LocalNode };

export interface RequestOptions {
  body?: unknown;
  /** Bearer token; default the admin token, null for none. */
  token?: string | null;
  headers?: Record<string, string>;
  raw?: string | Buffer;
}

/** Cluster timings for tests: a dead worker is noticed within a few seconds. */
export const TEST_CLUSTER_CONFIG = {
  cluster: { heartbeatMs: 500, workerTimeoutMs: 3000 },
};

export class TestCluster {
  private readonly pool: pg.Pool;

  constructor(readonly local: LocalCluster) {
    this.pool = new pg.Pool({ connectionString: local.database.url, max: 2 });
    // The database is dropped with FORCE at the end: a connection still open then is ended.
    this.pool.on("error", () => undefined);
  }

  get api(): LocalNode {
    return this.local.api;
  }
  get workers(): LocalNode[] {
    return this.local.workers;
  }
  get adminToken(): string {
    return this.local.adminToken;
  }

  /** A request to the API node, JSON in (when `body` is set) and the raw Response out. */
  request(method: string, path: string, o: RequestOptions = {}): Promise<Response> {
    const token = o.token === undefined ? this.adminToken : o.token;
    const headers: Record<string, string> = { ...o.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | Buffer | undefined = o.raw;
    if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers["content-type"] ??= "application/json";
    }
    return fetch(`${this.api.url}${path}`, { method, headers, body });
  }

  /** Like `request`, with the answer parsed; throws with the body when the status is not `expect`. */
  async json<T>(method: string, path: string, expect: number, o: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, o);
    const text = await res.text();
    if (res.status !== expect)
      throw new Error(`${method} ${path}: expected ${expect}, got ${res.status}: ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  }

  /** Rows of a query on the cluster's shared database. */
  async sql<T extends Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pool.query<T>(text, params)).rows;
  }

  listing(): Promise<ClusterWorkerView[]> {
    return this.local.listing();
  }

  /** The listing's entry for a worker node, or undefined when the API node does not list it. */
  async viewOf(node: LocalNode): Promise<ClusterWorkerView | undefined> {
    return (await this.listing()).find((w) => w.id === node.spec.workerId);
  }

  /** SIGKILL, as a power loss: nothing of the node runs its shutdown. */
  async kill9(node: LocalNode): Promise<void> {
    node.child.kill("SIGKILL");
    await node.exit;
  }

  /** `signal`, then SIGKILL after `boundMs`; says whether it had to be forced. */
  stop(node: LocalNode, signal: NodeJS.Signals = "SIGTERM", boundMs = 30_000) {
    return stopNode(node, signal, boundMs);
  }

  restart(node: LocalNode): Promise<LocalNode> {
    return this.local.restart(node);
  }

  addWorker(): Promise<LocalNode> {
    return this.local.addWorker();
  }

  /**
   * What a node's sandboxes left on the machine: processes of its uid range,
   * and cgroups under its parent (only those of the process `pid`, when
   * given; a live worker's own keep-warm cgroups are not leftovers).
   */
  leftovers(node: LocalNode, pid?: number): { processes: number[]; cgroups: string[] } {
    const cgroups = cgroupDirs(node.spec.cgroupParent).filter((dir) => {
      const name = basename(dir);
      if (pid !== undefined) return name.startsWith(`b${pid}-`);
      return name !== node.spec.cgroupParent && !/-keepwarm[ab]$/.test(name);
    });
    return { processes: processesInUidRange(node.spec.uidBase, node.spec.uidCount), cgroups };
  }

  /** Every node's last log lines, for a failure message. */
  logs(lines = 30): string {
    return [this.api, ...this.workers]
      .map((n) => `--- ${n.spec.name} (pid ${n.pid}) ---\n${tail(n, lines)}`)
      .join("\n");
  }

  /**
   * Polls `check` until it answers true, failing after `timeoutMs` with
   * `what`, the last value `describe` gave, and the nodes' logs.
   */
  async until(
    what: string,
    check: () => Promise<boolean>,
    timeoutMs = 30_000,
    describe?: () => Promise<string>,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check()) return;
      if (Date.now() > deadline) {
        const state = describe ? `\nlast state: ${await describe()}` : "";
        throw new Error(`${what}: not within ${timeoutMs} ms${state}\n${this.logs()}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Stops and removes everything; answers which nodes needed SIGKILL and what was left. */
  async close(): Promise<{ forced: string[]; swept: SweepReport[] }> {
    await this.pool.end().catch(() => undefined);
    return this.local.close();
  }
}

/**
 * Starts an API node and `workers` workers (default 2) and waits until the
 * API node lists every worker active. `config` is merged into every node's.
 */
export async function startCluster(
  o: Omit<LocalClusterOptions, "adminDatabaseUrl"> = {},
): Promise<TestCluster> {
  const config = o.config ?? {};
  const local = await LocalCluster.start({
    ...o,
    adminDatabaseUrl: TEST_DATABASE_URL,
    config: {
      ...TEST_CLUSTER_CONFIG,
      ...config,
      cluster: { ...TEST_CLUSTER_CONFIG.cluster, ...(config.cluster as object | undefined) },
    },
  });
  return new TestCluster(local);
}
