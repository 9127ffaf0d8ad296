/**
 * A box: one sandbox identity (host uid, workspace tmpfs) that runs one or
 * more programs in turn — a compile step and then the program, say — each in
 * a fresh cgroup with its own limits. A box can be prepared before its
 * program is known; the workspace is mounted by its first run, in a mount
 * namespace of that run's helper, which holds it until the box is destroyed.
 *
 * The first run can also be started ahead (`prestart`, the warm pool): the
 * sandbox comes up to where its init waits for the request, and the run that
 * takes it sends the request, having set the request's own limits.
 *
 * Lifecycle: prepared → (running ↔ idle)* → destroyed. `destroy()` is safe
 * to call twice and leaves no process, cgroup, mount, directory or uid lease.
 */
import { rm } from "node:fs/promises";
import type { Cgroup } from "./cgroups/index.js";
import { dirname, join } from "node:path";
import { EgressProxy } from "../network/proxy.js";
import type { Logger } from "../audit/logger.js";
import { WardenError } from "../errors.js";
import { buildBwrapArgs, WORKSPACE, type BwrapLayout } from "./bwrap-args.js";
import { classify } from "./classify.js";
import type { CgroupDriver } from "./cgroups/index.js";
import { buildExecArgs, FD, MiB, rlimitsFor, workspaceInodes } from "./exec-args.js";
import { encodeInitRequest } from "./init-request.js";
import { Launched } from "./supervise.js";
import type { ReadOnlyMount, RunResult, SandboxFile, SandboxLimits, SandboxSpec } from "./types.js";
import type { UidPool } from "./uid-pool.js";
import {
  addUsage,
  emptyUsage,
  MiB as BYTES_PER_MIB,
  type ExecutionUsage,
} from "../contract/usage.js";
import { checkFiles, fillWorkspace } from "./workspace.js";

/** What a box borrows from its host. */
export interface BoxContext {
  bwrapPath: string;
  helperPath: string;
  seccompPath: string;
  layout: Omit<BwrapLayout, "workspaceDir" | "tmpDir">;
  cgroups: CgroupDriver;
  uids: UidPool;
  logger: Logger;
  /** Preload routing Node's fetch through the egress proxy, when built. */
  nodeProxyPath: string | null;
  /** Teardown left to finish after a result was returned (awaited at shutdown). */
  track(work: Promise<unknown>): void;
}

export interface BoxOptions {
  /** Size of the workspace tmpfs (MiB); /workspace and /tmp share it. */
  diskMb: number;
  files?: readonly SandboxFile[];
  /**
   * Host directories every run of the box sees read-only at `target` (an
   * environment): bound by the helper that holds the workspace, as root, so
   * their host path need not be reachable by the sandbox uid. One shared
   * tree, never copied.
   */
  binds?: readonly ReadOnlyMount[] | undefined;
}

/** What is fixed when a sandbox starts, before its program is known (a pooled box). */
export interface LaunchSpec {
  /** The cgroup's limits until a run sets its own, and the rlimit ceilings. */
  limits: SandboxLimits;
  mounts?: readonly ReadOnlyMount[] | undefined;
  /** Environment of init and of a warm stub (on top of the base one). */
  env?: Readonly<Record<string, string>> | undefined;
  /** A warm stub to start at once (warden-init --warm). */
  warm?: readonly string[] | undefined;
}

interface Started {
  launched: Launched;
  cgroup: Cgroup;
  mounts: readonly ReadOnlyMount[];
  limits: SandboxLimits;
}

/** Inside the sandbox: the egress socket, and the loopback port the bridge serves it on. */
export const EGRESS_SOCKET = "/.warden/egress.sock";
export const EGRESS_PORT = 3128;
export const NODE_PROXY_PRELOAD = "/.warden/lib/node-proxy.cjs";

/** What programs, package managers and tools read to find the proxy. */
export function proxyEnv(port = EGRESS_PORT): Record<string, string> {
  const http = `http://127.0.0.1:${port}`;
  const socks = `socks5h://127.0.0.1:${port}`;
  return {
    HTTP_PROXY: http,
    HTTPS_PROXY: http,
    http_proxy: http,
    https_proxy: http,
    ALL_PROXY: socks,
    all_proxy: socks,
    NO_PROXY: "",
    no_proxy: "",
    npm_config_proxy: http,
    npm_config_https_proxy: http,
    NODE_USE_ENV_PROXY: "1",
  };
}

/** The environment every program starts from; runtimes and requests add to it. */
export const BASE_ENV: Readonly<Record<string, string>> = {
  PATH: "/usr/local/bin:/usr/bin:/bin",
  HOME: WORKSPACE,
  TMPDIR: "/tmp",
  LANG: "C.UTF-8",
  USER: "sandbox",
};

/**
 * What callers use of a box, whichever tier runs it: `Box` (bubblewrap over the
 * host kernel) or `GvisorBox` (runsc; src/sandbox/gvisor/box.ts).
 */
export interface SandboxBox {
  readonly id: string;
  /** The host uid leased to the box (its files and, in the namespaces tier, its processes). */
  readonly uid: number;
  /** The box's first run took a sandbox started ahead (the warm pool). */
  readonly tookWarm: boolean;
  /** The workspace on the host between runs (or after the last), else null. */
  readonly deadWorkspace: string | null;
  sidePath(name: string): string;
  startedMemoryBytes(): Promise<number>;
  usage(): ExecutionUsage;
  provide(files: readonly SandboxFile[]): void;
  prestart(spec: LaunchSpec): Promise<void>;
  run(spec: SandboxSpec): Promise<RunResult>;
  destroy(): Promise<void>;
}

type BoxState = "prepared" | "idle" | "running" | "destroyed";

export class Box implements SandboxBox {
  private state: BoxState = "prepared";
  private runs = 0;
  private destroying: Promise<void> | undefined;
  /** The first run's helper: it holds the workspace's mount namespace. */
  private holder: Launched | undefined;
  private prestarted: Started | undefined;
  /** The box's first run took a sandbox started ahead (the warm pool). */
  tookWarm = false;
  private files: readonly SandboxFile[];
  /** What the box's runs have used so far (usage accounting). */
  private used: ExecutionUsage = emptyUsage();

  constructor(
    readonly id: string,
    readonly uid: number,
    private readonly dir: string,
    private readonly options: BoxOptions,
    private readonly ctx: BoxContext,
  ) {
    this.files = options.files ?? [];
  }

  /**
   * A host path beside the box's directory (for a socket bound into the box). It is
   * root-owned territory the sandbox cannot write, and carries the box's owner-tagged
   * name so the janitor finds it after a crash.
   */
  sidePath(name: string): string {
    return join(dirname(this.dir), `${this.id}-${name}`);
  }

  /** The workspace as the host reaches it: through the holder's root, in its namespace. */
  private workspaceVia(pid: number): string {
    return `/proc/${pid}/root${this.dir}/workspace`;
  }

  /**
   * The workspace on the host after the sandbox's processes are gone (between
   * runs, or after the last one, for artifacts to be read), else null.
   */
  get deadWorkspace(): string | null {
    const pid = this.holder?.pid;
    return this.holder?.holding && pid !== undefined && this.state === "idle"
      ? this.workspaceVia(pid)
      : null;
  }

  /** Memory the started (not yet taken) sandbox uses, read from its cgroup; 0 if none. */
  async startedMemoryBytes(): Promise<number> {
    const usage = await this.prestarted?.cgroup.usage().catch(() => undefined);
    return usage?.memoryBytes ?? 0;
  }

  /** What every run of this box used, added up (docs/usage.md). */
  usage(): ExecutionUsage {
    return { ...this.used };
  }

  /** The files of the first run, for a box prepared before its request (checked paths). */
  provide(files: readonly SandboxFile[]): void {
    if (this.state !== "prepared")
      throw new WardenError("INTERNAL", `box ${this.id} has already run`);
    this.files = checkFiles(files);
  }

  /** Starts the box's first sandbox ahead of its request; resolves once init waits for it. */
  async prestart(spec: LaunchSpec): Promise<void> {
    if (this.state !== "prepared" || this.prestarted)
      throw new WardenError("INTERNAL", `box ${this.id} has already started`);
    const started = await this.launch(spec, undefined);
    this.prestarted = started;
    try {
      await started.launched.ready;
    } catch (error) {
      this.prestarted = undefined;
      await started.launched.kill();
      await started.cgroup.destroy();
      throw error;
    }
  }

  private async launch(spec: LaunchSpec, socketPath: string | undefined): Promise<Started> {
    const cgroup = await this.ctx.cgroups.create(`${this.id}-${++this.runs}`, {
      memoryBytes: spec.limits.memoryMb * MiB,
      pids: spec.limits.pids,
      cpuPercent: spec.limits.cpuPercent,
    });
    const binds = this.options.binds ?? [];
    // The holder's binds, seen by this run's bubblewrap in the box's namespace.
    const mounts = [
      ...binds.map((b, i) => ({ source: join(this.dir, `bind${i}`), target: b.target })),
      ...(spec.mounts ?? []),
    ];
    try {
      if (socketPath) {
        mounts.push({ source: socketPath, target: EGRESS_SOCKET });
        if (this.ctx.nodeProxyPath)
          mounts.push({ source: this.ctx.nodeProxyPath, target: NODE_PROXY_PRELOAD });
      }
      const holder = this.holder?.pid;
      const launched = new Launched({
        helperPath: this.ctx.helperPath,
        helperArgs: buildExecArgs({
          bwrapPath: this.ctx.bwrapPath,
          bwrapArgs: buildBwrapArgs({
            layout: {
              ...this.ctx.layout,
              workspaceDir: join(this.dir, "workspace"),
              tmpDir: join(this.dir, "tmp"),
            },
            mounts,
            env: { ...BASE_ENV, ...spec.env },
            cwd: WORKSPACE,
            shmBytes: spec.limits.memoryMb * MiB,
            seccompFd: FD.seccomp,
            statusFd: FD.status,
            requestFd: FD.request,
            warm: spec.warm,
            bridge: socketPath ? { socket: EGRESS_SOCKET, port: EGRESS_PORT } : undefined,
          }),
          uid: this.uid,
          gid: this.uid,
          cgroupProcsFiles: cgroup.procsFiles,
          rlimits: rlimitsFor(spec.limits),
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
      });
      if (holder === undefined) this.holder = launched;
      return { launched, cgroup, mounts, limits: spec.limits };
    } catch (error) {
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
    const log = this.ctx.logger.child({ box: this.id, run: this.runs + 1 });
    const limits = spec.limits;
    let started = this.prestarted;
    this.prestarted = undefined;
    let proxy: EgressProxy | undefined;
    let socketPath: string | undefined;
    let cpuBaselineMs = 0;
    let warm = false;
    try {
      if (started && !spec.network && covers(started.mounts, spec.mounts ?? [])) {
        warm = true;
        this.tookWarm = true;
        if (!sameCgroupLimits(started.limits, limits))
          await started.cgroup.setLimits({
            memoryBytes: limits.memoryMb * MiB,
            pids: limits.pids,
            cpuPercent: limits.cpuPercent,
          });
        cpuBaselineMs = (await started.cgroup.accounting()).cpuTimeMs;
      } else {
        if (started) await this.discard(started);
        if (spec.network) {
          socketPath = join(dirname(this.dir), `${this.id}-${this.runs + 1}`);
          proxy = new EgressProxy(spec.network.policy, (e) => spec.network?.onEvent?.(e));
          await proxy.listen(socketPath, this.uid);
        }
        started = await this.launch({ limits, mounts: spec.mounts }, socketPath);
      }
      const { launched, cgroup } = started;
      spec.onCgroup?.(cgroup);
      log.debug({ argv: spec.argv, warm }, "sandbox starting");
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
        fillWorkspace: first
          ? (pid) => fillWorkspace(this.workspaceVia(pid), this.files, this.uid)
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
      const verdict = classify({ ...outcome, oomKills: accounting.oomKills });
      let stderr = outcome.stderr.text();
      if (verdict.status === "error" && outcome.program === null) {
        // bubblewrap's own complaint lands on stderr: it belongs in the error, not the output.
        verdict.errorMessage =
          `${verdict.errorMessage ?? ""} ${stderr.trim().slice(0, 500)}`.trim();
        stderr = "";
      }
      if (verdict.status === "error") log.warn({ reason: verdict.errorMessage }, "sandbox failed");
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
      };
      this.used = addUsage(this.used, {
        cpuMs: metrics.cpuTimeMs,
        memoryMbMs: Math.round((metrics.memoryByteMs / BYTES_PER_MIB) * 1000) / 1000,
        wallMs: metrics.wallTimeMs,
        // A kernel without a peak (v2 before 5.19) still gets the sampled highest.
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
        isolation: "namespaces",
      };
    } finally {
      if (this.state === "running") this.state = "idle";
      // The result is known: what is left is cleanup, off the caller's path.
      const cgroup = started?.cgroup;
      const closing = proxy;
      const socket = socketPath;
      this.ctx.track(
        (async () => {
          if (closing) {
            await closing.close();
            if (socket) await rm(socket, { force: true });
          }
          await cgroup?.destroy();
        })(),
      );
    }
  }

  private async discard(started: Started): Promise<void> {
    await started.launched.kill();
    if (started.launched === this.holder) this.holder = undefined;
    await started.cgroup.destroy();
  }

  /** Kills what is left, lets the workspace go, removes the directory and returns the uid. */
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

function sameCgroupLimits(a: SandboxLimits, b: SandboxLimits): boolean {
  return a.memoryMb === b.memoryMb && a.pids === b.pids && a.cpuPercent === b.cpuPercent;
}

/** Whether a started sandbox has every mount a run asks for (a warm stub's is extra). */
function covers(started: readonly ReadOnlyMount[], wanted: readonly ReadOnlyMount[]): boolean {
  return wanted.every((w) => started.some((m) => m.source === w.source && m.target === w.target));
}
