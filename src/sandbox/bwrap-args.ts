/**
 * Pure builders of the bubblewrap command line. Each returns a `string[]`
 * fragment; `buildBwrapArgs` joins them in the order bubblewrap needs.
 * Nothing here touches the filesystem, so every flag is unit-tested.
 */
import type { ReadOnlyMount } from "./types.js";

/** Where Warden's init lives inside every sandbox. */
export const INIT_PATH = "/.warden/init";
export const WORKSPACE = "/workspace";
/** E2B's home directory, a link to the workspace in every sandbox. */
export const HOME_USER = "/home/user";
/** The uid/gid the program sees; the host sees the box's own unprivileged uid. */
export const SANDBOX_UID = 1000;
export const SANDBOX_HOSTNAME = "warden";

/** A top-level system path: bound read-only, or recreated as the same symlink (merged /usr). */
export type SystemEntry =
  { kind: "dir"; path: string } | { kind: "symlink"; path: string; target: string };

export interface BwrapLayout {
  /** /usr, /bin, /lib... as found on the host. */
  system: readonly SystemEntry[];
  /** Host directory mounted read-only as /etc (a curated copy, never the host's). */
  etcDir: string;
  /** Host directories behind /workspace and /tmp (inside the box's tmpfs). */
  workspaceDir: string;
  tmpDir: string;
  /** Host path of warden-init (a copy readable by the sandbox uid). */
  initPath: string;
}

export interface BwrapRunOptions {
  layout: BwrapLayout;
  mounts: readonly ReadOnlyMount[];
  env: Readonly<Record<string, string>>;
  cwd: string;
  /** Size of /dev/shm (its pages count against the memory limit as well). */
  shmBytes: number;
  /** fd (in bwrap's table) holding the seccomp BPF program. */
  seccompFd: number;
  /** fd warden-init reports the program's exit on. */
  statusFd: number;
  /** fd warden-init reads its run request from (init-request.ts). */
  requestFd: number;
  /** An interpreter to start at once, waiting for the request (the warm pool's stubs). */
  warm?: readonly string[] | undefined;
  /** Relay 127.0.0.1:port inside to this Unix socket (egress proxy). */
  bridge?: { socket: string; port: number } | undefined;
}

/**
 * Every namespace, with no way to make more: user namespaces are disabled
 * inside (a nested userns is the usual first step of a kernel exploit),
 * the sandbox dies with Warden, and a new session stops TIOCSTI injection.
 */
export function namespaceArgs(): string[] {
  return [
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-net",
    "--unshare-cgroup",
    "--disable-userns",
    "--assert-userns-disabled",
    "--die-with-parent",
    "--new-session",
    "--as-pid-1",
    "--uid",
    String(SANDBOX_UID),
    "--gid",
    String(SANDBOX_UID),
    "--hostname",
    SANDBOX_HOSTNAME,
  ];
}

/** System directories read-only; symlinked ones (merged /usr) recreated as symlinks. */
export function systemArgs(system: readonly SystemEntry[]): string[] {
  const args: string[] = [];
  for (const entry of system) {
    if (entry.kind === "dir") args.push("--ro-bind", entry.path, entry.path);
    else args.push("--symlink", entry.target, entry.path);
  }
  return args;
}

export function readOnlyArgs(mounts: readonly ReadOnlyMount[]): string[] {
  return mounts.flatMap((m) => ["--ro-bind", m.source, m.target]);
}

/**
 * The private parts: a fresh /proc for the sandbox's own pid namespace, a
 * minimal read-only /dev (null, zero, full, random, urandom, tty, pts) with a
 * bounded /dev/shm, the box's tmpfs as /workspace (also /home/user) and /tmp,
 * and Warden's init.
 * No /sys, no host /proc, nothing of the service.
 */
export function privateArgs(layout: BwrapLayout, shmBytes: number): string[] {
  return [
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    // POSIX shared memory (multiprocessing locks) gets its own bounded tmpfs;
    // the rest of /dev is read-only, so nothing else there takes writes.
    "--perms",
    "1777",
    "--size",
    String(shmBytes),
    "--tmpfs",
    "/dev/shm",
    "--remount-ro",
    "/dev",
    "--bind",
    layout.workspaceDir,
    WORKSPACE,
    // E2B scripts write /home/user/... (docs/e2b.md): a link to the workspace,
    // in a /home of the sandbox's own (never the host's homes), read-only below.
    "--perms",
    "0755",
    "--dir",
    "/home",
    "--symlink",
    WORKSPACE,
    HOME_USER,
    "--bind",
    layout.tmpDir,
    "/tmp",
    "--ro-bind",
    layout.initPath,
    INIT_PATH,
  ];
}

/**
 * The environment is cleared, then rebuilt from exactly what the caller gives.
 * It is init's (and a warm stub's); the program gets the one in its request.
 */
export function envArgs(env: Readonly<Record<string, string>>): string[] {
  const args = ["--clearenv"];
  for (const [key, value] of Object.entries(env)) args.push("--setenv", key, value);
  return args;
}

export function buildBwrapArgs(options: BwrapRunOptions): string[] {
  const { layout } = options;
  return [
    ...namespaceArgs(),
    ...systemArgs(layout.system),
    "--ro-bind",
    layout.etcDir,
    "/etc",
    ...readOnlyArgs(options.mounts),
    ...privateArgs(layout, options.shmBytes),
    // Everything not bound above (/, /etc, /.warden...) becomes read-only.
    "--remount-ro",
    "/",
    ...envArgs(options.env),
    "--chdir",
    options.cwd,
    "--seccomp",
    String(options.seccompFd),
    "--",
    INIT_PATH,
    String(options.statusFd),
    String(options.requestFd),
    ...(options.bridge ? ["--bridge", options.bridge.socket, String(options.bridge.port)] : []),
    ...(options.warm ? ["--warm", ...options.warm] : []),
  ];
}
