import { mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import { randomInt } from "node:crypto";
import { join } from "node:path";
import { WardenError } from "../errors.js";
import { isErrno } from "./cgroups/cgroup.js";

/**
 * Hands each box a host uid of its own from a configured range. A lease is a
 * file created with O_EXCL, so several Warden processes on one host never
 * share a uid; the file holds the box id, which names the lease's owner.
 */
export class UidPool {
  constructor(
    private readonly dir: string,
    private readonly base: number,
    private readonly count: number,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  async acquire(boxId: string): Promise<number> {
    const start = randomInt(this.count);
    for (let i = 0; i < this.count; i++) {
      const uid = this.base + ((start + i) % this.count);
      try {
        const handle = await open(join(this.dir, String(uid)), "wx", 0o600);
        await handle.writeFile(boxId);
        await handle.close();
        return uid;
      } catch (error) {
        if (!isErrno(error, "EEXIST")) throw error;
      }
    }
    throw new WardenError("SANDBOX_BUSY", `all ${this.count} sandbox uids are in use`);
  }

  async release(uid: number): Promise<void> {
    await unlink(join(this.dir, String(uid))).catch((error: unknown) => {
      if (!isErrno(error, "ENOENT")) throw error;
    });
  }

  /** Every lease: uid → box id. */
  async leases(): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const uid = Number(name);
      if (!Number.isInteger(uid)) continue;
      out.set(uid, (await readFile(join(this.dir, name), "utf8").catch(() => "")).trim());
    }
    return out;
  }

  contains(uid: number): boolean {
    return uid >= this.base && uid < this.base + this.count;
  }
}
