/**
 * The environments of one data dir: `<dataDir>/environments/<name>/` holds
 * `manifest.json` and `tree/` (what sandboxes see, read-only). A build is
 * assembled under a temporary name and renamed into place, so a reader sees
 * a whole environment or none, and a failed build leaves nothing.
 *
 * Use is tracked across processes (the CLI's `env rm` runs beside a live
 * service): each use (a running execution, a live session) keeps a file
 * `leases/<pid>-<n>` there holding its process's start time, so a lease of a
 * dead process (or of a reused pid) is told apart and ignored.
 */
import { readFileSync, statSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { z } from "zod";
import {
  DEFAULT_ENVIRONMENT,
  ENVIRONMENT_NAME,
  EnvironmentSchema,
  type EnvironmentInfo,
} from "../contract/environment.js";
import { WardenError } from "../errors.js";
import { mountOf, type EnvironmentMount } from "./layout.js";

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const ManifestSchema = EnvironmentSchema.extend({ createdAt: z.string() }).strict();

/** Checks a name given by a user; `field` names it in the error. */
export function checkEnvironmentName(name: string, field: string): string {
  if (!ENVIRONMENT_NAME.test(name))
    throw new WardenError(
      "INVALID_REQUEST",
      `${field}: "${name.slice(0, 80)}" is not an environment name (lower case letters, digits, . _ -, at most 63, starting with a letter or digit)`,
    );
  return name;
}

/** The start time of a live process (from /proc), or null when it is gone. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

let leaseSeq = 0;

export class EnvironmentStore {
  readonly root: string;
  /** Manifests read, by name, with the file's identity when read. */
  private readonly cache = new Map<string, { stamp: string; info: EnvironmentInfo }>();

  constructor(
    dataDir: string,
    private readonly defaultLanguages: readonly ("python" | "node")[] = ["python", "node"],
  ) {
    this.root = join(dataDir, "environments");
  }

  dirOf(name: string): string {
    return join(this.root, name);
  }

  /** The built-in one: the host's own packages, as every run without an environment gets. */
  defaultInfo(): EnvironmentInfo {
    return {
      name: DEFAULT_ENVIRONMENT,
      builtin: true,
      languages: [...this.defaultLanguages],
      packages: [],
      sizeBytes: null,
      fileCount: null,
      digest: null,
      createdAt: null,
    };
  }

  async list(): Promise<EnvironmentInfo[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const out: EnvironmentInfo[] = [this.defaultInfo()];
    for (const name of names.sort()) {
      if (!ENVIRONMENT_NAME.test(name) || name === DEFAULT_ENVIRONMENT) continue;
      const info = this.find(name);
      if (info) out.push(info);
    }
    return out;
  }

  /**
   * A manifest, read synchronously (a request is checked on its way in) and
   * cached while the file is unchanged.
   */
  private read(name: string): EnvironmentInfo | null {
    const path = join(this.dirOf(name), "manifest.json");
    let st;
    try {
      st = statSync(path);
    } catch {
      this.cache.delete(name);
      return null;
    }
    if (!st.isFile() || st.size > MAX_MANIFEST_BYTES) return null;
    const stamp = `${st.ino}:${st.mtimeMs}:${st.size}`;
    const cached = this.cache.get(name);
    if (cached?.stamp === stamp) return cached.info;
    const info = ManifestSchema.parse(JSON.parse(readFileSync(path, "utf8")));
    this.cache.set(name, { stamp, info });
    return info;
  }

  private find(name: string): EnvironmentInfo | null {
    try {
      return this.read(name);
    } catch {
      return null; // a damaged manifest: not an environment
    }
  }

  has(name: string): boolean {
    return this.find(name) !== null;
  }

  /** An environment by name; NOT_FOUND naming `field` when there is none. */
  get(name: string, field = "name"): EnvironmentInfo {
    if (name === DEFAULT_ENVIRONMENT) return this.defaultInfo();
    checkEnvironmentName(name, field);
    const info = this.find(name);
    if (!info)
      throw new WardenError(
        "NOT_FOUND",
        `${field}: no environment named "${name}" (GET /v1/environments, warden env list)`,
      );
    return info;
  }

  /** What a run mounts for `name`; null for the default environment (nothing to mount). */
  resolve(name: string | undefined, field: string): EnvironmentMount | null {
    if (name === undefined || name === DEFAULT_ENVIRONMENT) return null;
    const info = this.get(name, field);
    return mountOf(
      info.name,
      `${info.name}@${info.createdAt}`,
      join(this.dirOf(name), "tree"),
      info.languages,
    );
  }

  /**
   * Marks `name` in use until the returned release is called (idempotent).
   * Throws NOT_FOUND naming `field` when it was removed meanwhile.
   */
  async acquire(name: string, field = "environment"): Promise<() => Promise<void>> {
    const leases = join(this.dirOf(name), "leases");
    const lease = join(leases, `${process.pid}-${++leaseSeq}`);
    let released = false;
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      await unlink(lease).catch(() => undefined);
    };
    try {
      await mkdir(leases, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "EEXIST") throw e;
      });
      await writeFile(lease, startTime(process.pid) ?? "");
      this.get(name, field); // still there once the lease is down (see remove)
    } catch (error) {
      await release();
      if (error instanceof WardenError) throw error;
      throw new WardenError("NOT_FOUND", `${field}: no environment named "${name}"`);
    }
    return release;
  }

  /** Processes holding the environment in `dir` now (stale leases are removed). */
  private async holders(dir: string): Promise<number[]> {
    const live: number[] = [];
    for (const entry of await readdir(join(dir, "leases")).catch(() => [] as string[])) {
      const pid = Number(entry.split("-")[0]);
      const recorded = await readFile(join(dir, "leases", entry), "utf8").catch(() => null);
      if (Number.isInteger(pid) && recorded !== null && startTime(pid) === recorded) live.push(pid);
      else await unlink(join(dir, "leases", entry)).catch(() => undefined);
    }
    return [...new Set(live)];
  }

  /** Removes an environment no process uses; INVALID_REQUEST naming the users otherwise. */
  async remove(name: string): Promise<void> {
    if (name === DEFAULT_ENVIRONMENT)
      throw new WardenError("INVALID_REQUEST", `name: "default" is built in and cannot be removed`);
    this.get(name);
    const dir = this.dirOf(name);
    const inUse = (pids: number[]): WardenError =>
      new WardenError(
        "INVALID_REQUEST",
        `environment "${name}" is in use by a running execution or live session (Warden process ${pids.join(", ")}); remove it once they end`,
      );
    const before = await this.holders(dir);
    if (before.length > 0) throw inUse(before);
    // Moved aside first: a lease taken meanwhile moves with it and is seen below.
    const trash = join(this.root, `.rm-${name}-${process.pid}-${randomBytes(4).toString("hex")}`);
    await rename(dir, trash);
    const after = await this.holders(trash);
    if (after.length > 0) {
      await rename(trash, dir);
      throw inUse(after);
    }
    await rm(trash, { recursive: true, force: true });
  }

  /**
   * A fresh directory for a build, beside the environments (same file system,
   * for the rename); builds left by a process that died are removed first.
   */
  async buildDir(name: string): Promise<string> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    for (const entry of await readdir(this.root)) {
      const m = /^\.(?:build|rm)-.*-(\d+)-[0-9a-f]{8}$/.exec(entry);
      if (m && startTime(Number(m[1])) === null)
        await rm(join(this.root, entry), { recursive: true, force: true });
    }
    const dir = join(this.root, `.build-${name}-${process.pid}-${randomBytes(4).toString("hex")}`);
    await mkdir(dir, { mode: 0o700 });
    return dir;
  }

  /** Puts a finished build in place under `name`; refuses a name already taken. */
  async install(buildDir: string, info: EnvironmentInfo): Promise<void> {
    await writeFile(join(buildDir, "manifest.json"), `${JSON.stringify(info, null, 2)}\n`);
    const dir = this.dirOf(info.name);
    if (await stat(dir).catch(() => null))
      throw new WardenError("INVALID_REQUEST", `name: environment "${info.name}" already exists`);
    await rename(buildDir, dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOTEMPTY" || error.code === "EEXIST")
        throw new WardenError("INVALID_REQUEST", `name: environment "${info.name}" already exists`);
      throw error;
    });
  }
}
