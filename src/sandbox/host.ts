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
import { Box, type BoxContext, type BoxOptions, type SandboxBox } from "./box.js";
import type { Isolation } from "../contract/isolation.js";
import { GvisorBox, type GvisorContext } from "./gvisor/box.js";
import { describeProbe, probeGvisor, type GvisorProbe } from "./gvisor/probe.js";
import { ensureRootfs } from "./gvisor/rootfs.js";
import { runscGlobalArgs, type RunscPlatform } from "./exec-args.js";
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
import type { TierReporter, TierStatus } from "./tiers.js";

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

/** A host check's run (the gVisor probe, the self-test): a tiny program, small limits. */
const CHECK_LIMITS = (timeoutMs: number) => ({
  timeoutMs,
  killGraceMs: 0,
  memoryMb: 64,
  cpuPercent: 50,
  diskMb: 1,
  pids: 16,
  outputBytes: 4096,
  openFiles: 64,
});

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
  /**
   * The gVisor tier's probe: started at open when the tier is the default or
   * `enabled: on`, else at the first question; never awaited by the other tier.
   */
  private gvisorProbe: Promise<GvisorProbe> | undefined;
  private gvisorContext: GvisorContext | undefined;
  /** The probe's answer once it came (gvisorStatus reads it synchronously). */
  private gvisorKnown: GvisorProbe | undefined;

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
    private readonly config: SandboxHostConfig,
  ) {
    this.boxContext = { ...boxContext, track: (work) => this.track(work) };
    this.pool = new WarmPool(this, poolConfig, logger);
    if (config.isolation === "gvisor" || config.gvisor.enabled === "on") void this.gvisor();
  }

  /** The gVisor tier's platform once its probe passed, else null (template keys). */
  get gvisorPlatform(): string | null {
    return this.gvisorContext?.platform ?? null;
  }

  /** Whether the gVisor tier is available here, on which platform, or why not. */
  gvisor(): Promise<GvisorProbe> {
    this.gvisorProbe ??= this.probeGvisor();
    return this.gvisorProbe;
  }

  private async probeGvisor(): Promise<GvisorProbe> {
    const gvisor = this.config.gvisor;
    const probe = await probeGvisor(gvisor, async (platform) => {
      const ctx = await this.gvisorContextFor(platform);
      const box = new GvisorBox(...(await this.newBox()), { diskMb: 1 }, ctx);
      try {
        const result = await box.run({
          argv: ["/bin/true"],
          limits: CHECK_LIMITS(gvisor.probeTimeoutMs),
        });
        if (result.status === "completed") return null;
        return result.status === "timeout"
          ? `probe timed out after ${gvisor.probeTimeoutMs} ms`
          : `probe ended ${result.status}: ${(result.errorMessage ?? result.stderr).slice(0, 200)}`;
      } finally {
        await box.destroy();
      }
    }).catch((error: unknown): GvisorProbe => ({
      available: false,
      version: null,
      platform: null,
      reason: (error as Error).message,
      platforms: {},
    }));
    if (probe.available && probe.platform)
      this.gvisorContext = await this.gvisorContextFor(probe.platform);
    this.gvisorKnown = probe;
    const line = describeProbe(probe);
    if (!probe.available && gvisor.enabled === "on") this.logger.error(`gvisor tier ${line}`);
    else this.logger.info(`gvisor tier ${line}`);
    return probe;
  }

  private async gvisorContextFor(platform: string): Promise<GvisorContext> {
    const gvisor = this.config.gvisor;
    const runscRoot = join(this.runDir.root, "runsc");
    const bundleRoot = join(this.runDir.root, "gvisor");
    await mkdir(runscRoot, { recursive: true, mode: 0o700 });
    await mkdir(bundleRoot, { recursive: true, mode: 0o700 });
    const rootfs = await ensureRootfs(
      join(this.runDir.root, "gvisor-rootfs"),
      ownerTag(),
      this.boxContext.layout.system,
    );
    return {
      ...this.boxContext,
      gvisor,
      platform,
      runsc: {
        runscPath: gvisor.runscPath,
        // --overlay2=none: a newer runsc would otherwise lay a writable
        // memory overlay over the read-only root.
        globalArgs: [
          ...runscGlobalArgs(gvisor, platform as RunscPlatform, runscRoot),
          "--overlay2=none",
        ],
      },
      bundleRoot,
      rootfs,
      cgroupParent: this.cgroupParent,
    };
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
    // runsc too, so a dead owner's gVisor containers get `runsc delete --force`
    // (not only their state files removed); the tier off means no runsc is spawned.
    const janitorReport = await runJanitor({
      runDir,
      cgroups,
      uids,
      logger,
      runscPath: config.gvisor.enabled === "off" ? null : config.gvisor.runscPath,
    });
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
      config,
    );
  }

  /**
   * Destroys the pool's boxes, waits for teardowns, and drops this process's
   * claim on the shared /etc tree. Other boxes must be destroyed first.
   */
  async close(): Promise<void> {
    await this.gvisorProbe;
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
        limits: CHECK_LIMITS(10_000),
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

  /**
   * The tier's state without waiting (submit paths are synchronous): until
   * the probe has answered, gvisor is pending — not refused at submission;
   * `prepare` waits for the probe and refuses then if it failed.
   */
  gvisorStatus(): TierStatus {
    const probe = this.gvisorKnown;
    if (!probe) {
      // Asking is what starts the probe when nothing else did (a namespaces default).
      if (this.config.gvisor.enabled !== "off") void this.gvisor();
      return { available: false, pending: true, reason: "the gVisor probe is still running" };
    }
    return probe.available && probe.platform
      ? { available: true, platform: probe.platform, version: probe.version }
      : { available: false, reason: probe.reason ?? "not probed" };
  }

  /**
   * A new box with its own uid and (unmounted) workspace, in the tier asked
   * for (namespaces by default). Destroy it when done. A gvisor box on a host
   * without the tier is ISOLATION_UNAVAILABLE, with the probe's reason.
   */
  async prepare(options: BoxOptions & { isolation?: "namespaces" | undefined }): Promise<Box>;
  async prepare(options: BoxOptions & { isolation?: Isolation | undefined }): Promise<SandboxBox>;
  async prepare(options: BoxOptions & { isolation?: Isolation | undefined }): Promise<SandboxBox> {
    checkFiles(options.files ?? []);
    const { isolation, ...boxOptions } = options;
    if (isolation === "gvisor") {
      const probe = await this.gvisor();
      const ctx = this.gvisorContext;
      if (!probe.available || !ctx)
        throw new WardenError(
          "ISOLATION_UNAVAILABLE",
          `the gvisor tier is not available on this host: ${probe.reason ?? "not probed"}`,
        );
      return new GvisorBox(...(await this.newBox()), boxOptions, ctx);
    }
    return new Box(...(await this.newBox()), boxOptions, this.boxContext);
  }

  /** A box id, its uid lease and its directory. */
  private async newBox(): Promise<[string, number, string]> {
    const id = newBoxId();
    const uid = await this.uids.acquire(id);
    const dir = join(this.runDir.boxes, id);
    try {
      await mkdir(dir, { mode: 0o711 });
    } catch (error) {
      await this.uids.release(uid);
      throw error;
    }
    return [id, uid, dir];
  }
}
