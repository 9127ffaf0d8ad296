/**
 * A whole cluster on one machine: a scratch PostgreSQL database, Redis (a
 * private redis-server unless one is named), one API node and N workers, each
 * in a world of its own. `close()` stops every node and removes everything
 * the run made, whatever state the nodes were left in.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  clusterWorkers,
  healthy,
  startNode,
  stopNode,
  sweepNode,
  type ClusterWorkerView,
  type LocalNode,
  type NodeRole,
  type NodeSpec,
  type SweepReport,
} from "./local-nodes.js";
import {
  createScratchDatabase,
  freePort,
  startScratchRedis,
  type ScratchDatabase,
  type ScratchRedis,
} from "./local-services.js";

export interface LocalClusterOptions {
  /** Workers started with the API node. @default 2 */
  workers?: number;
  /** Config every node gets (limits, `cluster.*` timings). */
  config?: Record<string, unknown>;
  /** A PostgreSQL URL whose role may create databases; the cluster gets a fresh one. */
  adminDatabaseUrl: string;
  /** A shared Redis to use; unset: a private redis-server for this cluster. */
  redisUrl?: string;
  /** First uid of the cluster's ranges; node k gets [uidBase + k*uidSpan, +uidSpan). @default 780_000 */
  uidBase?: number;
  /** @default 200 */
  uidSpan?: number;
  /** Bound on each node's start. @default 60_000 */
  readyTimeoutMs?: number;
}

export class LocalCluster {
  readonly secret = randomBytes(24).toString("hex");
  readonly adminToken = `cluster-admin-${randomBytes(16).toString("hex")}`;
  api!: LocalNode;
  /** Live and dead workers alike, in start order (a restart replaces its entry). */
  readonly workers: LocalNode[] = [];
  private nodeCount = 0;
  /** Named before any start is awaited: workers started together must not share a name (and id). */
  private workerCount = 0;
  private readonly specs: NodeSpec[] = [];

  private constructor(
    /** Names every dir, cgroup and the database of this cluster. */
    readonly tag: string,
    private readonly o: LocalClusterOptions,
    readonly database: ScratchDatabase,
    readonly redis: ScratchRedis | null,
  ) {}

  get redisUrl(): string {
    return this.redis?.url ?? this.o.redisUrl!;
  }

  /** Starts the whole cluster; on any failure removes what it had made and rethrows. */
  static async start(o: LocalClusterOptions): Promise<LocalCluster> {
    const tag = `c${randomBytes(3).toString("hex")}`;
    const database = await createScratchDatabase(o.adminDatabaseUrl, `warden_t_${tag}_`);
    let redis: ScratchRedis | null = null;
    try {
      redis = o.redisUrl ? null : await startScratchRedis();
    } catch (error) {
      await database.drop();
      throw error;
    }
    const cluster = new LocalCluster(tag, o, database, redis);
    try {
      cluster.api = await cluster.startApi(await cluster.newSpec("api", "api"));
      await Promise.all(Array.from({ length: o.workers ?? 2 }, () => cluster.addWorker()));
      return cluster;
    } catch (error) {
      await cluster.close();
      // The tag names every dir and cgroup the cluster made (all removed by now).
      throw new Error(`cluster ${cluster.tag}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** A node's world: temp dir, run dir, cgroup parent, uid range, two free ports. */
  async newSpec(name: string, role: NodeRole): Promise<NodeSpec> {
    const k = this.nodeCount++;
    const span = this.o.uidSpan ?? 200;
    const root = mkdtempSync(join(tmpdir(), `warden-${this.tag}-${name}-`));
    mkdirSync(join(root, "data"));
    const spec: NodeSpec = {
      name,
      role,
      root,
      runDir: `/run/warden-${this.tag}-${name}`,
      cgroupParent: `warden-${this.tag}-${name}`,
      uidBase: (this.o.uidBase ?? 780_000) + k * span,
      uidCount: span,
      port: await freePort(),
      internalPort: await freePort(),
      ...(role === "api" ? {} : { workerId: `${this.tag}-${name}-1` }),
      config: this.o.config ?? {},
      env: {
        WARDEN_DATABASE_URL: this.database.url,
        WARDEN_REDIS_URL: this.redisUrl,
        WARDEN_CLUSTER_SECRET: this.secret,
      },
      adminToken: this.adminToken,
    };
    this.specs.push(spec);
    return spec;
  }

  private startApi(spec: NodeSpec): Promise<LocalNode> {
    return startNode(spec, healthy, this.o.readyTimeoutMs);
  }

  /** Workers as the API node's admin listing shows them. */
  listing(): Promise<ClusterWorkerView[]> {
    return clusterWorkers(this.api.url, this.adminToken);
  }

  private async startWorker(spec: NodeSpec): Promise<LocalNode> {
    let seen = "the API node's listing was never read";
    return startNode(
      spec,
      async () => {
        try {
          const workers = await this.listing();
          seen = `last listing: ${JSON.stringify(workers.map((w) => [w.id, w.state]))}`;
          return workers.some((w) => w.id === spec.workerId && w.state === "active");
        } catch (error) {
          seen = `last listing: ${(error as Error).message}`;
          return false;
        }
      },
      this.o.readyTimeoutMs,
      () => `waiting for ${spec.workerId} active; ${seen}`,
    );
  }

  /** Starts one more worker (a new world) and waits until the API node lists it active. */
  async addWorker(): Promise<LocalNode> {
    const spec = await this.newSpec(`w${++this.workerCount}`, "worker");
    const node = await this.startWorker(spec);
    this.workers.push(node);
    return node;
  }

  /**
   * Stops `node` (SIGTERM, SIGKILL after `boundMs`) unless it is already down,
   * and starts it again in the same world. A worker comes back under a new id:
   * the old one may already be declared gone, and a gone id never claims again.
   */
  async restart(node: LocalNode, boundMs = 30_000): Promise<LocalNode> {
    await stopNode(node, "SIGTERM", boundMs);
    if (node.spec.role === "api") return (this.api = await this.startApi(node.spec));
    const generation = Number(node.spec.workerId?.split("-").pop() ?? 1) + 1;
    const spec = { ...node.spec, workerId: `${this.tag}-${node.spec.name}-${generation}` };
    this.specs.push(spec);
    const started = await this.startWorker(spec);
    this.workers[this.workers.indexOf(node)] = started;
    return started;
  }

  /**
   * Stops every node (each bounded), then removes every world, the database
   * and Redis. Says which nodes had to be SIGKILLed and what each sweep
   * removed: after clean stops, nothing.
   */
  async close(boundMs = 30_000): Promise<{ forced: string[]; swept: SweepReport[] }> {
    const nodes = [this.api, ...this.workers].filter((n): n is LocalNode => n !== undefined);
    const stops = await Promise.all(nodes.map((n) => stopNode(n, "SIGTERM", boundMs)));
    const forced = nodes.filter((_, i) => stops[i]!.forced).map((n) => n.spec.name);
    const swept: SweepReport[] = [];
    for (const spec of this.specs) swept.push(await sweepNode(spec));
    await this.database.drop().catch(() => undefined);
    await this.redis?.stop();
    return { forced, swept };
  }
}
