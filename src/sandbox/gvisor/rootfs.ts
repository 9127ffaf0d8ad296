/**
 * The root of every gVisor container: a skeleton of empty mount points and
 * the merged-/usr symlinks, mounted read-only. Named by the digest of what it
 * holds and shared by every box and Warden process on the host (as the /etc
 * trees are), so a start writes nothing here; the janitor sweeps outdated ones.
 */
import { mkdir, symlink } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { HOME_USER, WORKSPACE, type SystemEntry } from "../bwrap-args.js";
import { sharedTree } from "../host-layout.js";

/** Mount points runsc finds in place (it can make others in its own view, but need not). */
export const SKELETON_DIRS = [
  "usr",
  "etc",
  "proc",
  "dev",
  "tmp",
  "workspace",
  ".warden",
  "home",
  "sys",
];

/**
 * E2B scripts write /home/user/... (docs/e2b.md): as in the namespaces tier
 * (bwrap-args.ts), a link to the workspace in a /home of the box's own, never
 * the host's homes. Both tiers show the same paths.
 */
const HOME_LINK = { path: HOME_USER.slice(1), target: WORKSPACE };

/** Bump when the skeleton's shape changes without its inputs changing. */
const ROOTFS_VERSION = "1";

export interface SkeletonContent {
  dirs: string[];
  symlinks: { path: string; target: string }[];
}

/** What the skeleton holds for this host's system layout (pure). */
export function skeletonContent(system: readonly SystemEntry[]): SkeletonContent {
  const dirs = new Set(SKELETON_DIRS);
  const symlinks: { path: string; target: string }[] = [{ ...HOME_LINK }];
  for (const entry of system) {
    const path = entry.path.replace(/^\/+/, "");
    if (entry.kind === "dir") dirs.add(path);
    else symlinks.push({ path, target: entry.target });
  }
  return { dirs: [...dirs].sort(), symlinks };
}

export function skeletonDigest(content: SkeletonContent): string {
  return createHash("sha256")
    .update(ROOTFS_VERSION)
    .update(JSON.stringify(content))
    .digest("hex")
    .slice(0, 16);
}

/** `<rootfsRoot>/<digest>`, built once (root-owned, world-readable: runsc's gofer opens it). */
export async function ensureRootfs(
  rootfsRoot: string,
  owner: string,
  system: readonly SystemEntry[],
): Promise<string> {
  const content = skeletonContent(system);
  return sharedTree(rootfsRoot, skeletonDigest(content), owner, async (temp) => {
    await mkdir(temp, { mode: 0o755 });
    for (const dir of content.dirs) await mkdir(join(temp, dir), { recursive: true, mode: 0o755 });
    for (const link of content.symlinks) await symlink(link.target, join(temp, link.path));
  });
}
