/**
 * The sandbox host: everything a process needs once to run sandboxes —
 * checked prerequisites, the cgroup driver, the run directory, the uid pool —
 * and the factory of boxes. One per Warden process.
 */
import { access, constants, mkdir, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { silentLogger, type Logger } from "../audit/logger.js";
import type { SandboxHostConfig } from "../config/schema.js";
import { WardenError } from "../errors.js";
import { Box, type BoxContext, type BoxOptions } from "./box.js";
import { SANDBOX_UID } from "./bwrap-args.js";
import {
  createCgroupDriver,
  readCgroupLayout,
  type CgroupDriver,
  type CgroupLayout,
} from "./cgroups/index.js";
import { prepareRunDir, systemEntries, type RunDirLayout } from "./host-layout.js";
import { runJanitor, type JanitorReport } from "./janitor.js";
import { registerLauncher } from "./launcher.js";
import { newBoxId, ownerTag } from "./owner.js";
import { UidPool } from "./uid-pool.js";
import { WarmPool, type PoolConfig } from "./pool.js";
import { checkFiles } from "./workspace.js";
import type { Isolation } from "../contract/isolation.js";
import { GVISOR_NOT_BUILT, type TierReporter, type TierStatus } from "./tiers.js";

export interface SandboxHostOptions {
  config: SandboxHostConfig;
  /** Runtime state directory (mount points, uid leases). */
  runDir: string;
  logger?: Logger;
  /** Files to copy into the run directory's lib/ for use inside sandboxes: name → host path. */
  privateFiles?: Record<string, string>;
}

const OPTIONAL_NATIVE_FILES = [
  "node-proxy.cjs",
  "agent.cjs",
  "kernel.py",
  "kernel.cjs",
  "kernel_common.py",
  "kernel_builtin.py",
  "kernel_display.py",
  "kernel_ipython.py",
  "kernel-bash.cjs",
  "kernel.bash",
  "warm.py",
  "warm.cjs",
];

/** Where Warden's compiled native helpers are, unless configured. */
export function defaultNativeDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/sandbox → <root>/build/native; src/sandbox (tests) → the same.
  return resolve(here, "..", "..", "build", "native");
}

export class SandboxHost implements TierReporter {
  /** Sandboxes started ahead of their requests. */
  readonly pool: WarmPool;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly boxContext: BoxContext;

  private constructor(
    /** Warden's cgroup name under each hierarchy root. */
    readonly cgroupParent: string,
    readonly cgroupLayout: CgroupLayout,
    readonly cgroups: CgroupDriver,
    readonly runDir: RunDirLayout,
    private readonly uids: UidPool,
    boxContext: Omit<BoxContext, "track">,
    readonly janitorReport: JanitorReport,
    private readonly releaseLauncher: () => Promise<void>,
    poolConfig: PoolConfig,
    private readonly logger: Logger,
  ) {
    this.boxContext = { ...boxContext, track: (work) => this.track(work) };
    this.pool = new WarmPool(this, poolConfig, logger);
  }

  /** Teardown that finishes after a result was returned; `settled()` and `close()` wait for it. */
  track(work: Promise<unknown>): void {
    const tracked = work.catch((error: unknown) =>
      this.logger.warn({ reason: (error as Error).message }, "sandbox teardown failed"),
    );
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  /** Resolves once every teardown left behind returned results has finished. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /**
   * Checks prerequisites, prepares the run directory and clears what a crashed
   * Warden left behind. Throws ISOLATION_UNAVAILABLE saying what is missing.
   */
  static async open(options: SandboxHostOptions): Promise<SandboxHost> {
    const logger = options.logger ?? silentLogger;
    const { config } = options;
    if (process.getuid?.() !== 0)
      throw new WardenError(
        "ISOLATION_UNAVAILABLE",
        "Warden must run as root to manage cgroups and per-sandbox uids (run `warden doctor`)",
      );
    const nativeDir = config.nativeDir ?? defaultNativeDir();
    const helperPath = join(nativeDir, "warden-exec");
    const initSource = join(nativeDir, "warden-init");
    const seccompPath = join(nativeDir, "seccomp.bpf");
    for (const [path, what] of [
      [config.bwrapPath, "bubblewrap (apt-get install bubblewrap)"],
      [helperPath, "warden-exec (npm run build:native)"],
      [initSource, "warden-init (npm run build:native)"],
      [seccompPath, "the seccomp filter (npm run build:native)"],
    ] as const) {
      await access(path, constants.R_OK).catch(() => {
        throw new WardenError("ISOLATION_UNAVAILABLE", `missing ${what}: ${path}`);
      });
    }
    const cgroupLayout = readCgroupLayout();
    const cgroups = createCgroupDriver(config.cgroupParent, cgroupLayout);
    // Built alongside the helpers, each optional: the Node fetch preload for
    // egress, the session agent and its Python and JavaScript kernels.
    const optional: Record<string, string> = {};
    for (const name of OPTIONAL_NATIVE_FILES) {
      const path = join(nativeDir, name);
      const readable = await access(path, constants.R_OK).then(
        () => true,
        () => false,
      );
      if (readable) optional[name] = path;
    }
    const runDir = await prepareRunDir(options.runDir, ownerTag(), {
      "warden-init": initSource,
      ...optional,
      ...options.privateFiles,
    });
    const uids = new UidPool(runDir.uids, config.uidBase, config.uidCount);
    await uids.init();
    const janitorReport = await runJanitor({ runDir, cgroups, uids, logger });
    const layout = {
      system: await systemEntries(),
      etcDir: runDir.etc,
      initPath: join(runDir.lib, "warden-init"),
    };
    // Started at the first run, restarted after a crash; Node's spawn if it cannot start.
    const releaseLauncher = registerLauncher({
      launcherPath: join(nativeDir, "warden-launch"),
      helperPath,
      seccompPath,
      socketDir: join(runDir.root, "launcher"),
      logger,
      keepWarm: async () => {
        // Owner-tagged like boxes, so the janitor clears them after a crash.
        const limits = { memoryBytes: 16 * 1024 * 1024, pids: 1, cpuPercent: 1 };
        const a = await cgroups.create(`${ownerTag()}-keepwarma`, limits);
        const b = await cgroups.create(`${ownerTag()}-keepwarmb`, limits);
        return {
          procsFiles: [a.procsFiles[0]!, b.procsFiles[0]!],
          release: async () => {
            await a.destroy();
            await b.destroy();
          },
        };
      },
    });
    logger.info({ cgroups: cgroupLayout.mode, runDir: runDir.root }, "sandbox host ready");
    return new SandboxHost(
      config.cgroupParent,
      cgroupLayout,
      cgroups,
      runDir,
      uids,
      {
        bwrapPath: config.bwrapPath,
        helperPath,
        seccompPath,
        layout,
        cgroups,
        uids,
        logger,
        nodeProxyPath: optional["node-proxy.cjs"] ? join(runDir.lib, "node-proxy.cjs") : null,
      },
      janitorReport,
      releaseLauncher,
      config.pool,
      logger,
    );
  }

  /**
   * Destroys the pool's boxes, waits for teardowns, and drops this process's
   * claim on the shared /etc tree. Other boxes must be destroyed first.
   */
  async close(): Promise<void> {
    await this.pool.close();
    await this.settled();
    await this.releaseLauncher();
    await rm(join(`${this.runDir.etc}.users`, ownerTag()), { force: true });
  }

  /** Path inside the run directory of a private file, as the sandbox sees it (bound read-only). */
  privateFile(name: string): string {
    return join(this.runDir.lib, name);
  }

  /**
   * Runs a tiny program in a real sandbox and checks that it ran as the
   * sandbox user. Resolves to null when isolation works, else to the reason.
   */
  async selfTest(): Promise<string | null> {
    const box = await this.prepare({ diskMb: 1 });
    try {
      const result = await box.run({
        argv: ["/usr/bin/id", "-u"],
        limits: {
          timeoutMs: 10_000,
          killGraceMs: 0,
          memoryMb: 64,
          cpuPercent: 50,
          diskMb: 1,
          pids: 16,
          outputBytes: 4096,
          openFiles: 64,
        },
      });
      if (result.status !== "completed")
        return `self-test run ended ${result.status}: ${result.errorMessage ?? result.stderr}`;
      if (result.stdout.trim() !== String(SANDBOX_UID))
        return `self-test ran as uid ${result.stdout.trim()}`;
      return null;
    } catch (error) {
      return (error as Error).message;
    } finally {
      await box.destroy();
    }
  }

  /** Whether the gVisor tier runs here, or why not (a stub until the gVisor box lands). */
  gvisorStatus(): TierStatus {
    return GVISOR_NOT_BUILT;
  }

  /** A new box with its own uid and (unmounted) workspace. Destroy it when done. */
  async prepare(options: BoxOptions & { isolation?: Isolation | undefined }): Promise<Box> {
    // Never a quiet fallback: a run asked (or forced) into gvisor does not get namespaces.
    if (options.isolation === "gvisor") {
      const status = this.gvisorStatus();
      throw new WardenError(
        "ISOLATION_UNAVAILABLE",
        `gVisor tier not available on this host: ${status.available ? "no gVisor box in this build" : status.reason}`,
      );
    }
    checkFiles(options.files ?? []);
    const id = newBoxId();
    const uid = await this.uids.acquire(id);
    const dir = join(this.runDir.boxes, id);
    try {
      await mkdir(dir, { mode: 0o711 });
    } catch (error) {
      await this.uids.release(uid);
      throw error;
    }
    return new Box(id, uid, dir, options, this.boxContext);
  }
}
