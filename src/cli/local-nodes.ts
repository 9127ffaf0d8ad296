/**
 * Cluster nodes on one machine, as real `warden serve --role ...` processes:
 * for `warden bench --cluster` and the cluster tests. Each node has a world
 * of its own (data dir, run dir, cgroup parent, uid range, ports), so a
 * worker's janitor never touches another worker's sandboxes, and a sweep
 * after the run removes exactly what that node made.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../bin/warden.js", import.meta.url));

export type NodeRole = "api" | "worker" | "all";

/** Everything that makes one node: who it is and where its state lives. */
export interface NodeSpec {
  name: string;
  role: NodeRole;
  /** Private temp dir: holds the node's config file and data dir. */
  root: string;
  runDir: string;
  cgroupParent: string;
  uidBase: number;
  uidCount: number;
  port: number;
  internalPort: number;
  /** `cluster.workerId` (workers); a restart may give a new one. */
  workerId?: string;
  /** Config shared by every node of the cluster (limits, cluster timings). */
  config: Record<string, unknown>;
  /** WARDEN_DATABASE_URL, WARDEN_REDIS_URL, WARDEN_CLUSTER_SECRET... */
  env: Record<string, string>;
  adminToken: string;
}

export interface LocalNode {
  spec: NodeSpec;
  child: ChildProcess;
  pid: number;
  /** The node's public listener (API nodes; workers may serve it too). */
  url: string;
  /** Its last log lines (stderr, pino JSON), for failure messages. */
  logs: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** `over` merged into `base`, objects key by key, everything else replaced. */
export function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/** The node's config file: the shared config, then what makes this node itself. */
export function nodeConfig(spec: NodeSpec): Json {
  const own: Json = {
    runDir: spec.runDir,
    server: { host: "127.0.0.1", port: spec.port },
    sandbox: { cgroupParent: spec.cgroupParent, uidBase: spec.uidBase, uidCount: spec.uidCount },
    cluster: {
      internalHost: "127.0.0.1",
      internalPort: spec.internalPort,
      ...(spec.workerId ? { workerId: spec.workerId, workerName: spec.name } : {}),
    },
  };
  // The pool starts sandboxes ahead: off unless the shared config turns it on.
  return deepMerge(deepMerge({ sandbox: { pool: { enabled: false } } }, spec.config), own);
}

/** The environment of a node: nothing of the caller's WARDEN_* leaks in. */
function nodeEnv(spec: NodeSpec): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("WARDEN_")) env[k] = v;
  return {
    ...env,
    WARDEN_CONFIG: join(spec.root, "config.json"),
    WARDEN_DATA_DIR: join(spec.root, "data"),
    WARDEN_ADMIN_TOKEN: spec.adminToken,
    WARDEN_LOG_LEVEL: "info",
    ...spec.env,
  };
}

/**
 * Nodes still running when this process exits (a crash, a Ctrl-C) get a
 * SIGKILL, so no sandbox-holding worker outlives the run that made it.
 */
const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (exitHook) return;
  exitHook = true;
  process.once("exit", () => {
    for (const c of live) c.kill("SIGKILL");
  });
}

/**
 * Starts the node and resolves once `ready()` holds (polled), failing with
 * the node's last log lines if it exits first or `timeoutMs` passes.
 */
export async function startNode(
  spec: NodeSpec,
  ready: (node: LocalNode) => Promise<boolean>,
  timeoutMs = 60_000,
  /** What the readiness check saw last, for the timeout message. */
  lastSeen: () => string = () => "",
): Promise<LocalNode> {
  writeFileSync(join(spec.root, "config.json"), JSON.stringify(nodeConfig(spec), null, 2));
  const child = spawn(process.execPath, [BIN, "serve", "--role", spec.role], {
    env: nodeEnv(spec),
    stdio: ["ignore", "ignore", "pipe"],
  });
  track(child);
  const logs: string[] = [];
  let partial = "";
  child.stderr.on("data", (d: Buffer) => {
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop() ?? "";
    logs.push(...lines);
    if (logs.length > 400) logs.splice(0, logs.length - 400);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const node: LocalNode = {
    spec,
    child,
    pid: child.pid!,
    url: `http://127.0.0.1:${spec.port}`,
    logs,
    exit,
  };
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void exit.then(() => (exited = true));
  for (;;) {
    if (exited) {
      // 'exit' can come before the last of stderr: wait (bounded) for the streams to close.
      await new Promise((r) => {
        if (child.stderr.closed) r(null);
        child.stderr.once("close", r);
        setTimeout(r, 2000).unref();
      });
      const how = await exit;
      throw new Error(
        `${spec.name} (${spec.role}) exited while starting (${how.signal ?? `code ${how.code}`}):\n${tail(node)}`,
      );
    }
    if (await ready(node).catch(() => false)) return node;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await exit;
      const seen = lastSeen();
      throw new Error(
        `${spec.name} (${spec.role}) not ready within ${timeoutMs} ms${seen ? ` (${seen})` : ""}:\n${tail(node)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The node's last log lines, for a failure message. */
export function tail(node: LocalNode, lines = 40): string {
  return node.logs.slice(-lines).join("\n");
}

/** Answers 200 on /healthz: the public listener is up. */
export async function healthy(node: LocalNode): Promise<boolean> {
  const res = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(2000) });
  await res.body?.cancel();
  return res.status === 200;
}

/**
 * Sends `signal`, then SIGKILL if the node is still up after `boundMs`.
 * Resolves with how it ended and whether it had to be forced.
 */
export async function stopNode(
  node: LocalNode,
  signal: NodeJS.Signals = "SIGTERM",
  boundMs = 30_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; forced: boolean }> {
  if (node.child.exitCode !== null || node.child.signalCode !== null)
    return { ...(await node.exit), forced: false };
  node.child.kill(signal);
  const timer = new Promise<"late">((r) => setTimeout(() => r("late"), boundMs).unref());
  if ((await Promise.race([node.exit, timer])) !== "late")
    return { ...(await node.exit), forced: false };
  node.child.kill("SIGKILL");
  return { ...(await node.exit), forced: true };
}

/** Mount points of every cgroup hierarchy (v1 controllers and the v2 tree). */
function cgroupRoots(): string[] {
  const roots: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const [left, right] = line.split(" - ");
    const fsType = right?.split(" ")[0];
    const mountPoint = left?.split(" ")[4];
    if ((fsType === "cgroup" || fsType === "cgroup2") && mountPoint) roots.push(mountPoint);
  }
  return [...new Set(roots)];
}

/** Every cgroup directory under `parent` in every hierarchy, deepest first. */
export function cgroupDirs(parent: string): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }))
      if (entry.isDirectory()) walk(join(dir, entry.name));
    found.push(dir);
  };
  for (const root of cgroupRoots()) {
    const top = join(root, parent);
    if (existsSync(top)) walk(top);
  }
  return found;
}

/** Live processes whose real uid is in [base, base + count): a node's sandboxes. */
export function processesInUidRange(base: number, count: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${entry}/status`, "utf8"))?.[1]);
      if (uid >= base && uid < base + count) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/** What a sweep had to remove: on a node that stopped cleanly, all zero. */
export interface SweepReport {
  node: string;
  /** Processes of its uid range or cgroups, killed. */
  processes: number;
  /** Sandbox cgroups (not the parent dirs, which a clean stop leaves). */
  cgroups: number;
  /** Mounts under its run dir. */
  mounts: number;
}

/**
 * Removes what a node left once it is stopped: stray processes of its uid
 * range and cgroups (thawed first, or a frozen process never dies), mounts
 * under its run dir, its run dir and its temp dir. Safe to call twice.
 */
export async function sweepNode(spec: NodeSpec): Promise<SweepReport> {
  const report: SweepReport = { node: spec.name, processes: 0, cgroups: 0, mounts: 0 };
  const kill = (pid: number): void => {
    try {
      process.kill(pid, "SIGKILL");
      report.processes++;
    } catch {
      // already gone
    }
  };
  processesInUidRange(spec.uidBase, spec.uidCount).forEach(kill);
  const dirs = cgroupDirs(spec.cgroupParent);
  // Parents first: a child cannot thaw under a frozen parent.
  for (const dir of [...dirs].reverse()) {
    const freezer = join(dir, "freezer.state");
    try {
      if (existsSync(freezer)) writeFileSync(freezer, "THAWED");
      for (const file of ["cgroup.procs", "tasks"]) {
        const list = join(dir, file);
        if (!existsSync(list)) continue;
        readFileSync(list, "utf8").split("\n").filter(Boolean).map(Number).forEach(kill);
      }
    } catch {
      // removed meanwhile
    }
  }
  for (const dir of dirs) {
    for (let tries = 0; tries < 50 && existsSync(dir); tries++) {
      try {
        rmdirSync(dir);
        if (basename(dir) !== spec.cgroupParent) report.cgroups++;
      } catch {
        await new Promise((r) => setTimeout(r, 100)); // its last processes are still exiting
      }
    }
  }
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => !!m && (m === spec.runDir || m.startsWith(`${spec.runDir}/`)))
    .reverse();
  for (const m of mounts) if (spawnSync("umount", ["-l", m]).status === 0) report.mounts++;
  rmSync(spec.runDir, { recursive: true, force: true });
  rmSync(spec.root, { recursive: true, force: true });
  return report;
}

/** One worker as the admin cluster listing shows it. */
export interface ClusterWorkerView {
  id: string;
  name: string;
  state: string;
  running: number;
  sessions: number;
  [field: string]: unknown;
}

/** GET /api/sandbox/cluster through an API node: the workers it knows. */
export async function clusterWorkers(url: string, token: string): Promise<ClusterWorkerView[]> {
  const res = await fetch(`${url}/api/sandbox/cluster`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(5000),
  });
  const body = (await res.json()) as { workers?: ClusterWorkerView[] } | ClusterWorkerView[];
  if (res.status !== 200)
    throw new Error(`GET /api/sandbox/cluster answered ${res.status}: ${JSON.stringify(body)}`);
  const workers = Array.isArray(body) ? body : body.workers;
  if (!Array.isArray(workers))
    throw new Error(`GET /api/sandbox/cluster has no workers list: ${JSON.stringify(body)}`);
  return workers;
}
