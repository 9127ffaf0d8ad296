/**
 * What of the host a sandbox sees, decided once at start-up: the system
 * directories (read-only), a curated /etc, and Warden's own files, copied
 * into the run directory so that the unprivileged sandbox uid can reach them
 * wherever Warden itself is installed.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createHash } from "node:crypto";
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { SANDBOX_HOSTNAME, SANDBOX_UID, type SystemEntry } from "./bwrap-args.js";

const execFileAsync = promisify(execFile);

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

/** Bumped when the way the tree is built changes. */
const ETC_TREE_VERSION = "1";

async function presentEntries(hostEtc: string): Promise<string[]> {
  const names = [...ETC_ENTRIES];
  for (const name of await readdir(hostEtc).catch(() => [] as string[]))
    if (ETC_PATTERNS.some((p) => p.test(name))) names.push(name);
  const present: string[] = [];
  for (const name of names)
    if (await lstat(join(hostEtc, name)).catch(() => null)) present.push(name);
  return present;
}

/**
 * Builds the sandbox's /etc as one directory: copies of the curated host
 * entries (symlinks kept as symlinks) plus the generated files. One bind
 * mount instead of one per file saves bubblewrap a few milliseconds a run.
 * coreutils' `cp -a` does the copy: several times faster than fs.cp.
 */
export async function buildEtcTree(target: string, hostEtc = "/etc"): Promise<void> {
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true, mode: 0o755 });
  const present = await presentEntries(hostEtc);
  if (present.length > 0)
    await execFileAsync("cp", ["-a", "--parents", "--", ...present, target], { cwd: hostEtc });
  for (const [name, content] of Object.entries(generatedEtc()))
    await writeFile(join(target, name), content, { mode: 0o644 });
}

/** A digest of everything the tree is made of: paths, types, sizes, mtimes, link targets. */
export async function etcFingerprint(hostEtc = "/etc"): Promise<string> {
  const present = await presentEntries(hostEtc);
  const { stdout } = present.length
    ? await execFileAsync("find", [...present, "-printf", "%p %y %s %T@ %l\\n"], {
        cwd: hostEtc,
        maxBuffer: 64 * 1024 * 1024,
      })
    : { stdout: "" };
  return createHash("sha256")
    .update(ETC_TREE_VERSION)
    .update(stdout)
    .update(JSON.stringify(generatedEtc()))
    .digest("hex")
    .slice(0, 16);
}

/**
 * The /etc tree for the host's current /etc, shared by every Warden process
 * on the host and built only when /etc changed. Each user leaves a marker in
 * `<tree>.users/`; the janitor removes an outdated tree once no live owner
 * marks it.
 */
export async function ensureEtcTree(
  etcRoot: string,
  owner: string,
  hostEtc = "/etc",
): Promise<string> {
  return sharedTree(etcRoot, await etcFingerprint(hostEtc), owner, (temp) =>
    buildEtcTree(temp, hostEtc),
  );
}

/**
 * A tree named by the digest of what it holds, shared by every Warden process
 * on the host: built once under a temporary name and renamed into place, so
 * nobody sees half of it; `<tree>.users/<owner>` marks who uses it, and the
 * janitor removes a tree no live owner marks.
 */
export async function sharedTree(
  root: string,
  digest: string,
  owner: string,
  build: (temp: string) => Promise<void>,
): Promise<string> {
  await mkdir(root, { recursive: true, mode: 0o755 });
  const tree = join(root, digest);
  const users = `${tree}.users`;
  await mkdir(users, { recursive: true, mode: 0o700 });
  await writeFile(join(users, owner), "");
  if (!(await stat(tree).catch(() => null))) {
    const temp = join(root, `${owner}-tmp`);
    await rm(temp, { recursive: true, force: true });
    await build(temp);
    await rename(temp, tree).catch(async (error: NodeJS.ErrnoException) => {
      // Another process built the same tree first: use theirs.
      if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
      await rm(temp, { recursive: true, force: true });
    });
  }
  return tree;
}

/**
 * Warden's own files for sandboxes (init, agent, kernels...), in a tree named
 * by their content. A fixed lib/ directory was overwritten in place by any other
 * Warden on the host (another version, another checkout), under its live sessions.
 */
async function ensureLibTree(
  libRoot: string,
  owner: string,
  files: Record<string, string>,
): Promise<string> {
  const names = Object.keys(files).sort();
  const hash = createHash("sha256");
  for (const name of names) {
    hash.update(`${name}\0`);
    hash.update(await readFile(files[name]!));
  }
  return sharedTree(libRoot, hash.digest("hex").slice(0, 16), owner, async (temp) => {
    await mkdir(temp, { mode: 0o755 });
    for (const name of names) {
      await copyFile(files[name]!, join(temp, name));
      await chmod(join(temp, name), 0o755);
    }
  });
}

export interface RunDirLayout {
  root: string;
  boxes: string;
  uids: string;
  /** Where the shared /etc trees live. */
  etcRoot: string;
  /** The /etc tree this process binds into its sandboxes. */
  etc: string;
  /** Where the shared trees of Warden's own files live. */
  libRoot: string;
  /** The tree of this process's own files, bound read-only into its sandboxes. */
  lib: string;
}

/**
 * Prepares the run directory. Its parents must let the sandbox uid pass
 * (mode 0711: traverse, not list), since bubblewrap opens bind sources as
 * that uid.
 */
export async function prepareRunDir(
  root: string,
  owner: string,
  privateFiles: Record<string, string>,
): Promise<RunDirLayout> {
  const etcRoot = join(root, "etc");
  const layout: RunDirLayout = {
    root,
    boxes: join(root, "boxes"),
    uids: join(root, "uids"),
    etcRoot,
    etc: "",
    libRoot: join(root, "lib"),
    lib: "",
  };
  await mkdir(root, { recursive: true, mode: 0o711 });
  await chmod(root, 0o711);
  await mkdir(layout.boxes, { recursive: true, mode: 0o711 });
  await chmod(layout.boxes, 0o711);
  await mkdir(layout.uids, { recursive: true, mode: 0o700 });
  layout.etc = await ensureEtcTree(etcRoot, owner);
  layout.lib = await ensureLibTree(layout.libRoot, owner, privateFiles);
  return layout;
}
