/**
 * A gVisor box made by hand for the native helpers' own tests: a Warden-style
 * cgroup, an OCI bundle (the minimum of what src/sandbox/gvisor/bundle.ts
 * writes), a control socket that accepts init's one connection, and
 * `warden-exec --runsc` started with Node's spawn. Everything it makes is
 * removed by `dispose`, also after a helper was killed.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { createCgroupDriver, type Cgroup } from "../../src/sandbox/cgroups/index.js";
import {
  buildRunscExecArgs,
  runscGlobalArgs,
  workspaceInodes,
} from "../../src/sandbox/exec-args.js";

export const NATIVE = resolve(import.meta.dirname, "../../build/native");
export const RUNSC = "/usr/bin/runsc";
const PARENT = "warden-gvn-test";
const GUEST = 1000;

/** Why the gVisor cases cannot run here, or null. */
export function unavailable(): string | null {
  if (process.getuid?.() !== 0) return "needs root";
  if (!existsSync(RUNSC)) return `runsc is not installed at ${RUNSC} (apt-get install runsc)`;
  if (!existsSync(join(NATIVE, "warden-exec"))) return "native helpers not built (npm run build)";
  return null;
}

export interface BoxOptions {
  /** init's arguments after `--socket /.warden/ctl.sock`. */
  initArgs?: string[];
  /** Extra OCI mounts (a host socket, a warm stub). */
  mounts?: object[];
  memoryMb?: number;
  diskMb?: number;
  /** Owner of the control socket. @default 1000, the guest's uid */
  socketOwner?: number;
}

export interface Run {
  helper: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** The helper's control lines so far (R, U, H, S, E). */
  control: () => string[];
  /** init's connection, once it has said "ready". */
  init: Promise<Socket>;
  /** The helper's "S" line has come. */
  settled: Promise<string[]>;
  /** The helper has exited. */
  exited: Promise<number | null>;
}

const bind = (source: string, destination: string, rw = false) => ({
  destination,
  type: "bind",
  source,
  options: ["rbind", rw ? "rw" : "ro", "nosuid", "nodev"],
});

export class GvisorBox {
  readonly id = `gvn-${randomBytes(4).toString("hex")}`;
  readonly dir = mkdtempSync("/tmp/warden-gvn-");
  readonly boxDir = join(this.dir, "box");
  readonly bundle = join(this.dir, "bundle");
  readonly runscRoot = join(this.dir, "runsc");
  readonly ctlPath = join(this.dir, "ctl.sock");
  private server: Server | undefined;

  private constructor(
    readonly cgroup: Cgroup,
    private readonly options: BoxOptions,
  ) {}

  static async create(options: BoxOptions = {}): Promise<GvisorBox> {
    const memoryMb = options.memoryMb ?? 256;
    const cgroup = await createCgroupDriver(PARENT).create(
      `gvn-${randomBytes(4).toString("hex")}`,
      {
        memoryBytes: (memoryMb + 32) << 20,
        pids: 2 * 64 + 128,
        cpuPercent: 100,
      },
    );
    const box = new GvisorBox(cgroup, options);
    box.writeBundle(memoryMb);
    return box;
  }

  /** The cgroup's name is the container id too, as Warden's `<boxId>-<n>`. */
  get containerId(): string {
    return this.cgroup.name;
  }

  private writeBundle(memoryMb: number): void {
    mkdirSync(this.boxDir, { mode: 0o711 });
    const etc = join(this.dir, "etc");
    mkdirSync(etc);
    writeFileSync(
      join(etc, "passwd"),
      "root:x:0:0::/root:/bin/sh\nsandbox:x:1000:1000::/workspace:/bin/sh\n",
    );
    writeFileSync(join(etc, "group"), "root:x:0:\nsandbox:x:1000:\n");
    const rootfs = join(this.bundle, "rootfs");
    for (const d of ["usr", "etc", "proc", "dev", "tmp", "workspace", ".warden/warm"])
      mkdirSync(join(rootfs, d), { recursive: true });
    for (const [link, target] of [
      ["bin", "usr/bin"],
      ["lib", "usr/lib"],
      ["lib64", "usr/lib64"],
      ["sbin", "usr/sbin"],
    ])
      symlinkSync(target!, join(rootfs, link!));
    for (const file of ["init", "ctl.sock", "egress.sock", "warm/warm.py"])
      writeFileSync(join(rootfs, ".warden", file), "");
    const spec = {
      ociVersion: "1.0.2",
      process: {
        terminal: false,
        user: { uid: GUEST, gid: GUEST, additionalGids: [] },
        args: ["/.warden/init", "--socket", "/.warden/ctl.sock", ...(this.options.initArgs ?? [])],
        env: ["PATH=/usr/bin:/bin", "HOME=/workspace", "LANG=C.UTF-8"],
        cwd: "/workspace",
        capabilities: Object.fromEntries(
          ["bounding", "effective", "inheritable", "permitted", "ambient"].map((k) => [k, []]),
        ),
        rlimits: [
          { type: "RLIMIT_CORE", hard: 0, soft: 0 },
          { type: "RLIMIT_NOFILE", hard: 256, soft: 256 },
        ],
        noNewPrivileges: true,
      },
      root: { path: "rootfs", readonly: true },
      hostname: "warden",
      mounts: [
        { destination: "/proc", type: "proc", source: "proc" },
        { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "mode=755"] },
        {
          destination: "/dev/shm",
          type: "tmpfs",
          source: "shm",
          options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${memoryMb << 20}`],
        },
        bind("/usr", "/usr"),
        bind(etc, "/etc"),
        bind(join(NATIVE, "warden-init"), "/.warden/init"),
        // The helper's host tmpfs, reached through its mount namespace.
        bind(join(this.boxDir, "workspace"), "/workspace", true),
        bind(join(this.boxDir, "tmp"), "/tmp", true),
        { destination: "/.warden/ctl.sock", type: "bind", source: this.ctlPath, options: ["bind"] },
        ...(this.options.mounts ?? []),
      ],
      linux: {
        namespaces: ["pid", "network", "ipc", "uts", "mount"].map((type) => ({ type })),
        cgroupsPath: `/${PARENT}/${this.containerId}`,
        maskedPaths: ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"],
        readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
      },
    };
    writeFileSync(join(this.bundle, "config.json"), JSON.stringify(spec));
  }

  /**
   * Listens for init (one connection, as Warden's control.ts), then starts the
   * helper: mounting a fresh workspace, or joining the namespace of `holder`.
   */
  async start(holder?: number): Promise<Run> {
    const server = createServer();
    this.server = server;
    await new Promise<void>((r) => server.listen(this.ctlPath, r));
    const init = new Promise<Socket>((resolveInit, reject) => {
      server.once("error", reject);
      server.once("connection", (socket) => {
        server.close();
        let said = "";
        socket.on("data", function hello(chunk: Buffer) {
          said += chunk.toString();
          if (said === "ready\n") {
            socket.off("data", hello);
            resolveInit(socket);
          } else if (!"ready\n".startsWith(said))
            reject(new Error(`init said ${JSON.stringify(said)}`));
        });
      });
    });
    // Reached by init as the guest's uid, inside gVisor (the Sentry checks it);
    // on the host the 0700 test directory keeps everyone but root out.
    return this.spawnHelper(init, holder);
  }

  private spawnHelper(init: Promise<Socket>, holder: number | undefined): Run {
    const diskMb = this.options.diskMb ?? 16;
    const args = buildRunscExecArgs({
      runscPath: RUNSC,
      globalArgs: runscGlobalArgs({ debugDir: null }, "ptrace", this.runscRoot),
      bundleDir: this.bundle,
      containerId: this.containerId,
      cgroupProcsFiles: this.cgroup.procsFiles,
      workspace: {
        dir: this.boxDir,
        mount:
          holder !== undefined
            ? { join: holder }
            : { bytes: diskMb << 20, inodes: workspaceInodes(diskMb) },
      },
    });
    const owner = this.options.socketOwner ?? GUEST;
    chownSync(this.ctlPath, owner, owner);
    chmodSync(this.ctlPath, 0o600);
    const helper = spawn(join(NATIVE, "warden-exec"), args, {
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      // Something to leak: the helper must clear it for runsc.
      env: { WARDEN_SECRET: "x" },
    });
    let stdout = "";
    let stderr = "";
    const control: string[] = [];
    helper.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    helper.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const controlStream = helper.stdio[3] as Socket;
    let partial = "";
    const settled = new Promise<string[]>((resolveSettled) => {
      controlStream.on("data", (d: Buffer) => {
        const lines = (partial + d.toString()).split("\n");
        partial = lines.pop() ?? "";
        control.push(...lines);
        if (lines.some((l) => l.startsWith("S ") || l.startsWith("E "))) resolveSettled(control);
      });
    });
    controlStream.on("error", () => undefined);
    const exited = new Promise<number | null>((r) => helper.on("exit", (code) => r(code)));
    return {
      helper,
      stdout: () => stdout,
      stderr: () => stderr,
      control: () => control,
      init,
      settled,
      exited,
    };
  }

  /** Host processes of this container: runsc run and everything under it. */
  processes(runscPid: number): number[] {
    const children = new Map<number, number[]>();
    for (const e of readdirSync("/proc")) {
      if (!/^\d+$/.test(e)) continue;
      const ppid = parentOf(Number(e));
      if (ppid !== null) children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    }
    const found: number[] = [];
    for (let todo = [runscPid]; todo.length;) {
      const pid = todo.pop()!;
      if (!existsSync(`/proc/${pid}`)) continue;
      found.push(pid);
      todo.push(...(children.get(pid) ?? []));
    }
    return found;
  }

  runsc(...args: string[]): string {
    const r = spawnSync(RUNSC, ["--root", this.runscRoot, ...args], { encoding: "utf8", env: {} });
    return r.stdout;
  }

  /** Stops what is left (nothing, normally) and removes every trace. */
  async dispose(): Promise<void> {
    this.server?.close();
    if (existsSync(this.runscRoot)) this.runsc("delete", "--force", this.containerId);
    await this.cgroup.destroy();
    // runsc makes the same name in the v1 hierarchies Warden does not drive.
    for (const hierarchy of readdirSync("/sys/fs/cgroup"))
      for (const dir of [join(hierarchy, PARENT, this.containerId), join(hierarchy, PARENT)])
        try {
          rmdirSync(join("/sys/fs/cgroup", dir));
        } catch {
          // absent, or another test's box still in the parent
        }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return null;
  }
}

export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}
