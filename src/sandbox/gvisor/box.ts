/**
 * A box of the gVisor tier (docs/isolation.md): the same contract as
 * `Box` — a leased uid, a workspace tmpfs held by the first run's helper, one
 * fresh cgroup per run — but each run is `runsc run` of an OCI bundle Warden
 * writes, started by warden-exec --runsc inside the box's cgroup and mount
 * namespace. The program runs as uid 1000 inside gVisor's kernel; the host
 * sees only runsc's gofer (root) and Sentry (nobody), both in the cgroup.
 * init talks over a Unix socket bound into the container (control.ts).
 */
import { mkdir, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import type { Logger } from "../../audit/logger.js";
import type { GvisorConfig } from "../../config/gvisor-config.js";
import { addUsage, emptyUsage, MiB as BYTES_PER_MIB } from "../../contract/usage.js";
import type { ExecutionUsage } from "../../contract/usage.js";
import { WardenError } from "../../errors.js";
import { EgressProxy } from "../../network/proxy.js";
import type { BoxContext, BoxOptions, LaunchSpec, SandboxBox } from "../box.js";
import { BASE_ENV, EGRESS_PORT, EGRESS_SOCKET, NODE_PROXY_PRELOAD, proxyEnv } from "../box.js";
import { SANDBOX_UID, WORKSPACE } from "../bwrap-args.js";
import type { Cgroup } from "../cgroups/index.js";
import { CPU_PERIOD_US, cpuQuotaUs } from "../cgroups/cgroup.js";
import { classify } from "../classify.js";
import { socketChannel } from "../control-channel.js";
import { buildRunscExecArgs, MiB, rlimitsFor, workspaceInodes } from "../exec-args.js";
import { encodeInitRequest } from "../init-request.js";
import { Launched } from "../supervise.js";
import type {
  ReadOnlyMount,
  RunResult,
  SandboxFile,
  SandboxLimits,
  SandboxSpec,
} from "../types.js";
import { checkFiles, fillWorkspace } from "../workspace.js";
import { buildOciSpec, writeBundle } from "./bundle.js";
import { ControlListener } from "./control.js";
import { gvisorCgroupLimits } from "./limits.js";
import { runscDelete, runscTerminate, type RunscCall } from "./runsc-args.js";

/** What a gVisor box borrows from its host on top of a namespaces box's context. */
export interface GvisorContext extends BoxContext {
  gvisor: GvisorConfig;
  /** runsc and its global flags (state root, network, host UDS, the probed platform). */
  runsc: RunscCall;
  platform: string;
  /** `<runDir>/gvisor`: one root-only bundle directory per run. */
  bundleRoot: string;
  /** The shared read-only skeleton root (rootfs.ts). */
  rootfs: string;
  /** Warden's cgroup parent, for the spec's cgroupsPath. */
  cgroupParent: string;
}

interface Started {
  launched: Launched;
  cgroup: Cgroup;
  control: ControlListener;
  container: string;
  bundle: string;
  mounts: readonly ReadOnlyMount[];
  limits: SandboxLimits;
}

type BoxState = "prepared" | "idle" | "running" | "destroyed";

export class GvisorBox implements SandboxBox {
  private state: BoxState = "prepared";
  private runs = 0;
  private destroying: Promise<void> | undefined;
  private holder: Launched | undefined;
  private prestarted: Started | undefined;
  tookWarm = false;
  private files: readonly SandboxFile[];
  private used: ExecutionUsage = emptyUsage();
  private readonly log: Logger;

  constructor(
    readonly id: string,
    readonly uid: number,
    private readonly dir: string,
    private readonly options: BoxOptions,
    private readonly ctx: GvisorContext,
  ) {
    this.files = options.files ?? [];
    this.log = ctx.logger.child({ box: id, isolation: "gvisor" });
  }

  sidePath(name: string): string {
    return join(this.dir, "..", `${this.id}-${name}`);
  }

  private workspaceVia(pid: number): string {
    return `/proc/${pid}/root${this.dir}/workspace`;
  }

  get deadWorkspace(): string | null {
    const pid = this.holder?.pid;
    return this.holder?.holding && pid !== undefined && this.state === "idle"
      ? this.workspaceVia(pid)
      : null;
  }

  async startedMemoryBytes(): Promise<number> {
    const usage = await this.prestarted?.cgroup.usage().catch(() => undefined);
    return usage?.memoryBytes ?? 0;
  }

  usage(): ExecutionUsage {
    return { ...this.used };
  }

  provide(files: readonly SandboxFile[]): void {
    if (this.state !== "prepared")
      throw new WardenError("INTERNAL", `box ${this.id} has already run`);
    this.files = checkFiles(files);
  }

  /** Runs the container up to init's `ready`: a taken box then answers in a few ms. */
  async prestart(spec: LaunchSpec): Promise<void> {
    if (this.state !== "prepared" || this.prestarted)
      throw new WardenError("INTERNAL", `box ${this.id} has already started`);
    const started = await this.launch(spec, undefined);
    this.prestarted = started;
    try {
      await started.launched.ready;
    } catch (error) {
      this.prestarted = undefined;
      await this.discard(started);
      throw error;
    }
  }

  private async launch(spec: LaunchSpec, proxySocket: string | undefined): Promise<Started> {
    const n = ++this.runs;
    const container = `${this.id}-${n}`;
    const cgroup = await this.ctx.cgroups.create(
      container,
      gvisorCgroupLimits(spec.limits, this.ctx.gvisor),
    );
    let control: ControlListener | undefined;
    try {
      control = await ControlListener.listen(this.sidePath(`ctl-${n}`));
      const binds = this.options.binds ?? [];
      const mounts = [
        ...binds.map((b, i) => ({ source: join(this.dir, `bind${i}`), target: b.target })),
        ...(spec.mounts ?? []),
      ];
      if (proxySocket && this.ctx.nodeProxyPath)
        mounts.push({ source: this.ctx.nodeProxyPath, target: NODE_PROXY_PRELOAD });
      const limits = gvisorCgroupLimits(spec.limits, this.ctx.gvisor);
      const bundle = await writeBundle(
        this.ctx.bundleRoot,
        container,
        buildOciSpec({
          rootfs: this.ctx.rootfs,
          system: this.ctx.layout.system,
          etcDir: this.ctx.layout.etcDir,
          initPath: this.ctx.layout.initPath,
          workspaceDir: join(this.dir, "workspace"),
          tmpDir: join(this.dir, "tmp"),
          controlSocket: control.path,
          mounts,
          bridge: proxySocket
            ? { hostSocket: proxySocket, socket: EGRESS_SOCKET, port: EGRESS_PORT }
            : undefined,
          env: { ...BASE_ENV, ...spec.env },
          rlimits: rlimitsFor(spec.limits),
          shmBytes: spec.limits.memoryMb * MiB,
          cgroupsPath: `/${this.ctx.cgroupParent}/${container}`,
          resources: {
            memoryBytes: limits.memoryBytes,
            pids: limits.pids,
            cpuQuotaUs: cpuQuotaUs(spec.limits.cpuPercent, availableParallelism()),
            cpuPeriodUs: CPU_PERIOD_US,
          },
          warm: spec.warm,
        }),
      );
      const holder = this.holder?.pid;
      const listener = control;
      const launched = new Launched({
        helperPath: this.ctx.helperPath,
        helperArgs: buildRunscExecArgs({
          runscPath: this.ctx.runsc.runscPath,
          globalArgs: this.ctx.runsc.globalArgs,
          bundleDir: bundle,
          containerId: container,
          cgroupProcsFiles: cgroup.procsFiles,
          workspace: {
            dir: this.dir,
            mount:
              holder !== undefined
                ? { join: holder }
                : {
                    bytes: this.options.diskMb * MiB,
                    inodes: workspaceInodes(this.options.diskMb),
                    binds: binds.map((b, i) => ({ source: b.source, name: `bind${i}` })),
                  },
          },
        }),
        seccompPath: this.ctx.seccompPath,
        cgroup,
        mountsWorkspace: holder === undefined,
        control: socketChannel(listener.connection),
        softStop: () => runscTerminate(this.ctx.runsc, container),
        runtimeName: "runsc",
        // runsc is gone: an init that never connected never will.
        onRuntimeExit: () => void listener.close(),
      });
      void launched.exited.then(() => listener.close());
      if (holder === undefined) this.holder = launched;
      return { launched, cgroup, control, container, bundle, mounts, limits: spec.limits };
    } catch (error) {
      await control?.close();
      await rm(join(this.ctx.bundleRoot, container), { recursive: true, force: true });
      await cgroup.destroy().catch(() => undefined);
      throw error;
    }
  }

  async run(spec: SandboxSpec): Promise<RunResult> {
    if (this.state === "running")
      throw new WardenError("INTERNAL", `box ${this.id} is already running`);
    if (this.state === "destroyed")
      throw new WardenError("INTERNAL", `box ${this.id} is destroyed`);
    if (this.state === "idle" && !this.holder?.holding)
      throw new WardenError("INTERNAL", `box ${this.id} has no workspace any more`);
    const first = this.state === "prepared";
    this.state = "running";
    const limits = spec.limits;
    let started = this.prestarted;
    this.prestarted = undefined;
    let proxy: EgressProxy | undefined;
    let socketPath: string | undefined;
    let socketDir: string | undefined;
    let cpuBaselineMs = 0;
    let warm = false;
    try {
      if (started && !spec.network && covers(started.mounts, spec.mounts ?? [])) {
        warm = true;
        this.tookWarm = true;
        await started.cgroup.setLimits(gvisorCgroupLimits(limits, this.ctx.gvisor));
        // The Sentry's start-up CPU is not the program's.
        cpuBaselineMs = (await started.cgroup.accounting()).cpuTimeMs;
      } else {
        if (started) await this.discard(started);
        if (spec.network) {
          // gVisor checks the socket's owner against the guest's uid 1000: it
          // is 1000's, inside a root-only directory no host user can pass.
          socketDir = this.sidePath(`net-${this.runs + 1}`);
          await rm(socketDir, { recursive: true, force: true });
          await mkdir(socketDir, { mode: 0o700 });
          socketPath = join(socketDir, "sock");
          proxy = new EgressProxy(spec.network.policy, (e) => spec.network?.onEvent?.(e));
          await proxy.listen(socketPath, SANDBOX_UID);
        }
        started = await this.launch({ limits, mounts: spec.mounts }, socketPath);
      }
      const { launched, cgroup } = started;
      spec.onCgroup?.(cgroup);
      this.log.debug({ argv: spec.argv, warm }, "gvisor sandbox starting");
      const outcome = await launched.begin({
        request: encodeInitRequest({
          cwd: spec.cwd ?? WORKSPACE,
          argv: spec.argv,
          env: {
            ...BASE_ENV,
            ...(spec.network ? proxyEnv() : {}),
            ...(spec.network && this.ctx.nodeProxyPath
              ? { NODE_OPTIONS: `--require=${NODE_PROXY_PRELOAD}` }
              : {}),
            ...spec.env,
          },
          rlimits: rlimitsFor(limits),
        }),
        // The guest's uid 1000 reaches the files through the gofer as host uid 1000.
        fillWorkspace: first
          ? (pid) => fillWorkspace(this.workspaceVia(pid), this.files, SANDBOX_UID)
          : undefined,
        stdin: spec.stdin,
        retainOutput: spec.retainOutput,
        outputBytes: limits.outputBytes,
        onOutput: spec.onOutput,
        timeoutMs: limits.timeoutMs,
        killGraceMs: limits.killGraceMs,
        cpuTimeMs: limits.cpuTimeMs,
        cpuBaselineMs,
        signal: spec.signal,
        workspace: () => {
          const pid = this.holder?.pid;
          return pid === undefined ? null : this.workspaceVia(pid);
        },
      });
      const accounting = await cgroup.accounting();
      if (outcome.program === null && outcome.bwrapStatus !== null && outcome.errors.length === 0)
        // runsc ended without init's report: its kernel died (OOM, pids) or was killed.
        // gVisor ignores RLIMIT_NPROC: a fork bomb ends at the host's pids.max and kills the Sentry.
        outcome.pidsExceeded = !outcome.timedOut && accounting.pidsMaxEvents > 0;
      const verdict = classify({ ...outcome, oomKills: accounting.oomKills });
      let stderr = outcome.stderr.text();
      if (verdict.status === "error" && outcome.program === null) {
        // runsc's own complaint ("running container: ...") belongs in the error.
        verdict.errorMessage =
          `${verdict.errorMessage ?? ""} ${stderr.trim().slice(0, 500)}`.trim();
        stderr = "";
      }
      if (verdict.status === "error")
        this.log.warn({ reason: verdict.errorMessage }, "gvisor sandbox failed");
      const metrics = {
        wallTimeMs: Math.round(outcome.wallTimeMs),
        cpuTimeMs: Math.max(0, accounting.cpuTimeMs - cpuBaselineMs),
        peakMemoryBytes: accounting.peakMemoryBytes,
        oomKills: accounting.oomKills,
        diskUsedBytes: outcome.disk?.usedBytes ?? 0,
        stdoutBytes: outcome.stdout.bytes,
        stderrBytes: outcome.stderr.bytes,
        networkBytes: proxy?.bytes ?? 0,
        networkConnections: proxy?.connections ?? 0,
        memoryByteMs: Math.round(outcome.usage?.memoryByteMs ?? 0),
        diskPeakBytes: Math.max(outcome.usage?.diskPeakBytes ?? 0, outcome.disk?.usedBytes ?? 0),
        platform: this.ctx.platform,
      };
      this.used = addUsage(this.used, {
        cpuMs: metrics.cpuTimeMs,
        memoryMbMs: Math.round((metrics.memoryByteMs / BYTES_PER_MIB) * 1000) / 1000,
        wallMs: metrics.wallTimeMs,
        peakMemoryBytes: Math.max(metrics.peakMemoryBytes, outcome.usage?.maxMemoryBytes ?? 0),
        diskPeakBytes: metrics.diskPeakBytes,
        egressBytes: metrics.networkBytes,
        egressConnections: metrics.networkConnections,
        outputBytes: metrics.stdoutBytes + metrics.stderrBytes,
      });
      return {
        ...verdict,
        stdout: outcome.stdout.text(),
        stderr,
        truncated: { stdout: outcome.stdout.truncated, stderr: outcome.stderr.truncated },
        metrics,
        sandbox: { id: this.id, uid: this.uid },
        warm,
        isolation: "gvisor",
      };
    } finally {
      if (this.state === "running") this.state = "idle";
      // The result is known: runsc's state, the bundle, the cgroup and the
      // sockets go off the caller's path.
      const done = started;
      const closing = proxy;
      const socket = socketDir;
      this.ctx.track(
        (async () => {
          if (done) await this.teardown(done);
          if (closing) await closing.close();
          if (socket) await rm(socket, { recursive: true, force: true });
        })(),
      );
    }
  }

  /** After a container's run has ended (runsc gone): runsc's state, the bundle, the socket, the cgroup. */
  private async teardown(s: Started): Promise<void> {
    await s.control.close();
    await runscDelete(this.ctx.runsc, s.container);
    await rm(s.bundle, { recursive: true, force: true });
    await s.cgroup.destroy();
  }

  private async discard(started: Started): Promise<void> {
    await started.launched.kill();
    if (started.launched === this.holder) this.holder = undefined;
    await this.teardown(started);
  }

  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      this.state = "destroyed";
      const started = this.prestarted;
      this.prestarted = undefined;
      if (started) await this.discard(started);
      if (this.holder) {
        this.holder.release();
        await this.holder.exited;
        this.holder = undefined;
      }
      await rm(this.dir, { recursive: true, force: true });
      await this.ctx.uids.release(this.uid);
    })();
    return this.destroying;
  }
}

/** Whether a started sandbox has every mount a run asks for. */
function covers(started: readonly ReadOnlyMount[], wanted: readonly ReadOnlyMount[]): boolean {
  return wanted.every((w) => started.some((m) => m.source === w.source && m.target === w.target));
}
