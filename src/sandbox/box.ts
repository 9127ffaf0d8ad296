/**
 * A box: one sandbox identity (host uid, workspace tmpfs) that runs one or
 * more programs in turn — a compile step and then the program, say — each in
 * a fresh cgroup with its own limits. A box can be prepared before its
 * program is known; the workspace is mounted by its first run.
 *
 * Lifecycle: prepared → (running ↔ idle)* → destroyed. `destroy()` is safe
 * to call twice and leaves no process, cgroup, mount, directory or uid lease.
 */
import { spawn } from "node:child_process";
import { open, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { EgressProxy } from "../network/proxy.js";
import type { Logger } from "../audit/logger.js";
import { WardenError } from "../errors.js";
import { buildBwrapArgs, WORKSPACE, type BwrapLayout } from "./bwrap-args.js";
import { classify } from "./classify.js";
import type { CgroupDriver } from "./cgroups/index.js";
import { parseMountInfo } from "./cgroups/detect.js";
import { buildExecArgs, FD, MiB, rlimitsFor, workspaceInodes } from "./exec-args.js";
import { supervise } from "./supervise.js";
import type { RunResult, SandboxFile, SandboxSpec } from "./types.js";
import type { UidPool } from "./uid-pool.js";
import { fillWorkspace } from "./workspace.js";

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
}

export interface BoxOptions {
  /** Size of the workspace tmpfs (MiB); /workspace and /tmp share it. */
  diskMb: number;
  files?: readonly SandboxFile[];
}

export interface BoxRunOptions {
  /** Unmount the workspace when this run ends (the last run of a one-shot box). */
  last?: boolean;
  /**
   * With `last`: keep the workspace mounted if this directory (relative to
   * /workspace) exists when the run ends, for artifacts to be collected.
   */
  keepIf?: string;
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

type BoxState = "prepared" | "idle" | "running" | "destroyed";

export class Box {
  private state: BoxState = "prepared";
  private mounted = false;
  private runs = 0;
  private destroying: Promise<void> | undefined;

  constructor(
    readonly id: string,
    readonly uid: number,
    private readonly dir: string,
    private readonly options: BoxOptions,
    private readonly ctx: BoxContext,
  ) {}

  /**
   * A host path beside the box's directory (for a socket bound into the box). It is
   * root-owned territory the sandbox cannot write, and carries the box's owner-tagged
   * name so the janitor finds it after a crash.
   */
  sidePath(name: string): string {
    return join(dirname(this.dir), `${this.id}-${name}`);
  }

  /**
   * The workspace on the host while it is mounted, after the sandbox's processes
   * are gone (a run with `keepIf` that kept it), else null.
   */
  get deadWorkspace(): string | null {
    return this.mounted && this.state === "idle" ? this.dirs.workspace : null;
  }

  private get dirs(): { workspace: string; tmp: string } {
    return { workspace: join(this.dir, "workspace"), tmp: join(this.dir, "tmp") };
  }

  async run(spec: SandboxSpec, runOptions: BoxRunOptions = {}): Promise<RunResult> {
    if (this.state === "running")
      throw new WardenError("INTERNAL", `box ${this.id} is already running`);
    if (this.state === "destroyed")
      throw new WardenError("INTERNAL", `box ${this.id} is destroyed`);
    if (this.state === "idle" && !this.mounted)
      throw new WardenError("INTERNAL", `box ${this.id} has no workspace any more`);
    this.state = "running";
    const cgroupName = `${this.id}-${++this.runs}`;
    const log = this.ctx.logger.child({ box: this.id, run: this.runs });
    const limits = spec.limits;
    const cgroup = await this.ctx.cgroups.create(cgroupName, {
      memoryBytes: limits.memoryMb * MiB,
      pids: limits.pids,
      cpuPercent: limits.cpuPercent,
    });
    spec.onCgroup?.(cgroup);
    const mountNow = !this.mounted;
    const last = runOptions.last === true;
    let seccomp: Awaited<ReturnType<typeof open>> | undefined;
    let proxy: EgressProxy | undefined;
    const socketPath = join(dirname(this.dir), cgroupName);
    const mounts = [...(spec.mounts ?? [])];
    try {
      if (spec.network) {
        proxy = new EgressProxy(spec.network.policy, (e) => spec.network?.onEvent?.(e));
        await proxy.listen(socketPath, this.uid);
        mounts.push({ source: socketPath, target: EGRESS_SOCKET });
        if (this.ctx.nodeProxyPath)
          mounts.push({ source: this.ctx.nodeProxyPath, target: NODE_PROXY_PRELOAD });
      }
      seccomp = await open(this.ctx.seccompPath, "r");
      const bwrapArgs = buildBwrapArgs({
        layout: { ...this.ctx.layout, workspaceDir: this.dirs.workspace, tmpDir: this.dirs.tmp },
        mounts,
        env: {
          ...BASE_ENV,
          ...(spec.network ? proxyEnv() : {}),
          ...(spec.network && this.ctx.nodeProxyPath
            ? { NODE_OPTIONS: `--require=${NODE_PROXY_PRELOAD}` }
            : {}),
          ...spec.env,
        },
        cwd: spec.cwd ?? WORKSPACE,
        shmBytes: limits.memoryMb * MiB,
        seccompFd: FD.seccomp,
        statusFd: FD.status,
        argv: spec.argv,
        bridge: spec.network ? { socket: EGRESS_SOCKET, port: EGRESS_PORT } : undefined,
      });
      const helperArgs = buildExecArgs({
        bwrapPath: this.ctx.bwrapPath,
        bwrapArgs,
        uid: this.uid,
        gid: this.uid,
        cgroupProcsFiles: cgroup.procsFiles,
        rlimits: rlimitsFor(limits),
        workspace: {
          dir: this.dir,
          mount: mountNow
            ? { bytes: this.options.diskMb * MiB, inodes: workspaceInodes(this.options.diskMb) }
            : undefined,
          umount: last,
          keepIf: runOptions.keepIf ? `workspace/${runOptions.keepIf}` : undefined,
        },
      });
      log.debug({ argv: spec.argv }, "sandbox starting");
      const outcome = await supervise(
        {
          helperPath: this.ctx.helperPath,
          helperArgs,
          seccompFd: FD.seccomp,
          cgroup,
          fillWorkspace: mountNow
            ? async () => {
                this.mounted = true;
                await fillWorkspace(this.dirs, this.options.files ?? [], this.uid);
              }
            : undefined,
          stdin: spec.stdin,
          retainOutput: spec.retainOutput,
          outputBytes: limits.outputBytes,
          onOutput: spec.onOutput,
          timeoutMs: limits.timeoutMs,
          killGraceMs: limits.killGraceMs,
          cpuTimeMs: limits.cpuTimeMs,
          signal: spec.signal,
        },
        seccomp.fd,
      );
      // The helper reports its end; without that report, whether the workspace is still
      // mounted is unknown, and destroy() checks the mount table.
      if (outcome.bwrapStatus === null && mountNow) this.mounted = true;
      else if (last && outcome.bwrapStatus !== null && !outcome.workspaceKept) this.mounted = false;
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
      return {
        ...verdict,
        stdout: outcome.stdout.text(),
        stderr,
        truncated: { stdout: outcome.stdout.truncated, stderr: outcome.stderr.truncated },
        metrics: {
          wallTimeMs: Math.round(outcome.wallTimeMs),
          cpuTimeMs: accounting.cpuTimeMs,
          peakMemoryBytes: accounting.peakMemoryBytes,
          oomKills: accounting.oomKills,
          diskUsedBytes: outcome.disk?.usedBytes ?? 0,
          stdoutBytes: outcome.stdout.bytes,
          stderrBytes: outcome.stderr.bytes,
          networkBytes: proxy?.bytes ?? 0,
        },
        sandbox: { id: this.id, uid: this.uid },
      };
    } finally {
      await seccomp?.close();
      if (proxy) {
        await proxy.close();
        await rm(socketPath, { force: true });
      }
      await cgroup.destroy();
      if (this.state === "running") this.state = "idle";
    }
  }

  /** Kills what is left, unmounts, removes the directory and returns the uid. */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      this.state = "destroyed";
      if (this.mounted && (await isMountPoint(this.dir))) await unmount(this.dir);
      this.mounted = false;
      await rm(this.dir, { recursive: true, force: true });
      await this.ctx.uids.release(this.uid);
    })();
    return this.destroying;
  }
}

export async function isMountPoint(dir: string): Promise<boolean> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  return parseMountInfo(info).some((m) => m.mountPoint === dir);
}

/** Lazy unmount with util-linux umount(8); Node has no umount of its own. */
export function unmount(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("umount", ["--lazy", dir], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`umount ${dir}: ${err.trim() || `exit ${code}`}`)),
    );
  });
}
