/**
 * What of the host a sandbox sees, decided once at start-up: the system
 * directories (read-only), a curated /etc, and Warden's own files, copied
 * into the run directory so that the unprivileged sandbox uid can reach them
 * wherever Warden itself is installed.
 */
import {
  chmod,
  copyFile,
  cp,
  lstat,
  mkdir,
  readdir,
  readlink,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { dirname, join } from "node:path";
import { SANDBOX_HOSTNAME, SANDBOX_UID, type SystemEntry } from "./bwrap-args.js";

/** Top-level system paths offered to sandboxes when the host has them. */
export const SYSTEM_PATHS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/**
 * Host /etc entries a program may need: the dynamic linker's cache, time
 * zones, the alternatives symlinks (cc, java...), CA certificates, JVM
 * config. Not passwd, shadow, hosts, ssh, or anything of the service.
 */
export const ETC_ENTRIES = [
  "ld.so.cache",
  "ld.so.conf",
  "ld.so.conf.d",
  "localtime",
  "timezone",
  "alternatives",
  "ssl/certs",
  "ssl/openssl.cnf",
  "ca-certificates",
  "mime.types",
  "os-release",
  "debian_version",
  "protocols",
  "services",
  "fonts",
  "matplotlibrc",
];
/** Patterns of /etc directories: JVMs keep their config there. */
export const ETC_PATTERNS = [/^java-\d+-openjdk$/];

/** Files Warden writes itself: a sandbox user, no name service, no DNS. */
export function generatedEtc(): Record<string, string> {
  return {
    passwd: `root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:${SANDBOX_UID}:${SANDBOX_UID}:Warden sandbox:/workspace:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\nsandbox:x:${SANDBOX_UID}:\nnogroup:x:65534:\n`,
    hosts: `127.0.0.1\tlocalhost ${SANDBOX_HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    hostname: `${SANDBOX_HOSTNAME}\n`,
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    "resolv.conf": "",
  };
}

export async function systemEntries(
  paths: readonly string[] = SYSTEM_PATHS,
): Promise<SystemEntry[]> {
  const entries: SystemEntry[] = [];
  for (const path of paths) {
    const info = await lstat(path).catch(() => null);
    if (!info) continue;
    if (info.isSymbolicLink())
      entries.push({ kind: "symlink", path, target: await readlink(path) });
    else if (info.isDirectory()) entries.push({ kind: "dir", path });
  }
  return entries;
}

/**
 * Builds the sandbox's /etc as one directory: copies of the curated host
 * entries (symlinks kept as symlinks) plus the generated files. One bind
 * mount instead of one per file saves bubblewrap a few milliseconds a run.
 */
export async function buildEtcTree(target: string, hostEtc = "/etc"): Promise<void> {
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true, mode: 0o755 });
  const names = [...ETC_ENTRIES];
  for (const name of await readdir(hostEtc).catch(() => [] as string[]))
    if (ETC_PATTERNS.some((p) => p.test(name))) names.push(name);
  for (const name of names) {
    const source = join(hostEtc, name);
    if (!(await lstat(source).catch(() => null))) continue;
    await mkdir(dirname(join(target, name)), { recursive: true, mode: 0o755 });
    await cp(source, join(target, name), { recursive: true, verbatimSymlinks: true, force: true });
  }
  for (const [name, content] of Object.entries(generatedEtc()))
    await writeFile(join(target, name), content, { mode: 0o644 });
}

async function copyAtomic(source: string, target: string, mode: number): Promise<void> {
  const [from, to] = await Promise.all([stat(source), stat(target).catch(() => null)]);
  if (to && to.size === from.size && to.mtimeMs >= from.mtimeMs) return;
  const temp = `${target}.${process.pid}.tmp`;
  await copyFile(source, temp);
  await chmod(temp, mode);
  await rename(temp, target);
}

export interface RunDirLayout {
  root: string;
  boxes: string;
  uids: string;
  /** This process's /etc tree (under etc/, named like a box of this owner). */
  etc: string;
  lib: string;
}

/**
 * Prepares the run directory. Its parents must let the sandbox uid pass
 * (mode 0711: traverse, not list), since bubblewrap opens bind sources as
 * that uid.
 */
export async function prepareRunDir(
  root: string,
  etcName: string,
  privateFiles: Record<string, string>,
): Promise<RunDirLayout> {
  const layout: RunDirLayout = {
    root,
    boxes: join(root, "boxes"),
    uids: join(root, "uids"),
    etc: join(root, "etc", etcName),
    lib: join(root, "lib"),
  };
  await mkdir(root, { recursive: true, mode: 0o711 });
  await chmod(root, 0o711);
  await mkdir(layout.boxes, { recursive: true, mode: 0o711 });
  await chmod(layout.boxes, 0o711);
  await mkdir(layout.uids, { recursive: true, mode: 0o700 });
  await mkdir(dirname(layout.etc), { recursive: true, mode: 0o755 });
  await buildEtcTree(layout.etc);
  await mkdir(layout.lib, { recursive: true, mode: 0o755 });
  for (const [name, source] of Object.entries(privateFiles))
    await copyAtomic(source, join(layout.lib, name), 0o755);
  return layout;
}
