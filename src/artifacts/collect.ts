/**
 * Collecting artifacts after a run: find the candidates, judge each one (name,
 * size, count, content type), store the accepted ones and say why the others
 * were refused. Candidates come either from a finished one-shot sandbox's
 * workspace, read by the host (see readDeadWorkspace), or from a live
 * session, read by the agent inside it.
 */
import { constants } from "node:fs";
import type { Stats } from "node:fs";
import { lstat, open, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { ArtifactEntry, RejectedArtifact } from "../contract/result.js";
import { OUTPUT_DIR } from "../sandbox/workspace.js";
import type { ArtifactStore } from "../store/store.js";
import { artifactNameProblem, judgeArtifact } from "./rules.js";

export interface ArtifactCandidate {
  /** Path relative to the collected directory (e.g. "plots/a.png"). */
  name: string;
  size: number;
  /** The bytes; absent when the candidate was refused before reading (too big, a link...). */
  content?: Buffer | undefined;
  /** Already refused when found (a link, a device...). */
  problem?: string | undefined;
}

export interface ArtifactLimits {
  maxBytes: number;
  maxCount: number;
  /** All accepted artifacts of one run together. */
  maxTotalBytes: number;
  allowedTypes: readonly string[];
}

export interface Collected {
  artifacts: ArtifactEntry[];
  rejected: RejectedArtifact[];
}

/** Collected from /workspace/output (names relative to it) unless named otherwise. */
export const ARTIFACT_DIR = OUTPUT_DIR;

/** Files looked at per run at most, and how deep: a tree of a million empty files is not walked. */
const MAX_SCANNED = 1000;
const MAX_DEPTH = 8;

/**
 * The candidates in a workspace whose sandbox has ENDED — the files `named`
 * (relative to /workspace) and everything under output/ — read by the host. Every
 * process of it is dead (its cgroup was killed), so nothing can swap a file
 * for a link between the checks here and the reads. Even so, nothing is
 * followed: lstat on every entry, O_NOFOLLOW on every open, and only regular
 * files are read. The workspace is the box's own tmpfs, so a hard link in it
 * can only name a file the sandbox made itself.
 */
export async function readDeadWorkspace(
  workspace: string,
  limits: ArtifactLimits,
  named: readonly string[] = [],
): Promise<ArtifactCandidate[]> {
  const found: ArtifactCandidate[] = [];
  // What is read is bounded like what is kept: count and total bytes.
  let read = 0;
  let budget = limits.maxTotalBytes;
  const take = async (path: string, name: string, st: Stats): Promise<void> => {
    if (!st.isFile()) {
      const what = st.isSymbolicLink() ? "a symbolic link" : "not a regular file";
      found.push({ name, size: 0, problem: `${what}: only regular files are collected` });
      return;
    }
    if (st.size > limits.maxBytes || read >= limits.maxCount || st.size > budget) {
      found.push({ name, size: st.size }); // refused by keepArtifacts with the reason
      return;
    }
    read++;
    budget -= st.size;
    const handle = await open(
      path,
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
    try {
      found.push({ name, size: st.size, content: await handle.readFile() });
    } finally {
      await handle.close();
    }
  };
  // Files named in the request: every component must be a real directory, the last a file.
  for (const name of named) {
    let path = workspace;
    let st: Stats | null = null;
    for (const part of name.split("/")) {
      if (st && !st.isDirectory()) {
        st = null; // a component before the last is not a directory
        break;
      }
      path = join(path, part);
      st = await lstat(path).catch(() => null);
      if (!st) break;
    }
    if (!st) found.push({ name, size: 0, problem: "no such file" });
    else await take(path, name, st);
  }
  const root = join(workspace, ARTIFACT_DIR);
  const top = await lstat(root).catch(() => null);
  if (!top?.isDirectory()) return found;
  const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
    for (const entry of await readdir(dir)) {
      if (found.length >= MAX_SCANNED) return;
      const path = join(dir, entry);
      const name = prefix ? `${prefix}/${entry}` : entry;
      const st = await lstat(path);
      if (st.isDirectory()) {
        if (depth < MAX_DEPTH) await walk(path, name, depth + 1);
      } else await take(path, name, st);
    }
  };
  await walk(root, "", 0);
  return found;
}

/**
 * The outcome when collecting failed as a whole (the store could not write, a
 * directory could not be read): the run's own result stands, and says so.
 */
export function collectFailed(error: unknown): Collected {
  // The code only: a file system error's message names host paths.
  const code = (error as { code?: unknown } | null)?.code;
  const why = typeof code === "string" ? code : "internal error";
  return {
    artifacts: [],
    rejected: [{ name: "*", reason: `artifacts could not be collected (${why})` }],
  };
}

/** Judges and stores candidates for `ownerId`; `urlOf` makes each download URL. */
export async function keepArtifacts(
  candidates: ArtifactCandidate[],
  o: {
    ownerId: string;
    userId: string;
    limits: ArtifactLimits;
    store: ArtifactStore;
    urlOf: (name: string) => string;
  },
): Promise<Collected> {
  const out: Collected = { artifacts: [], rejected: [] };
  let total = 0;
  const { limits } = o;
  for (const c of candidates.sort((a, b) => a.name.localeCompare(b.name))) {
    const refuse = (reason: string): void => void out.rejected.push({ name: c.name, reason });
    const badName = artifactNameProblem(c.name);
    if (badName) refuse(badName);
    else if (c.problem) refuse(c.problem);
    else if (c.size > limits.maxBytes)
      refuse(`${c.size} bytes is more than ${limits.maxBytes} (maxArtifactSizeMB)`);
    else if (out.artifacts.length >= limits.maxCount)
      refuse(`more than ${limits.maxCount} artifacts (maxArtifactsPerExecution)`);
    else if (total + c.size > limits.maxTotalBytes)
      refuse(`the run's artifacts would exceed ${limits.maxTotalBytes} bytes together`);
    else if (!c.content)
      refuse(
        `not read: the run's artifacts are limited to ${limits.maxCount} files and ${limits.maxTotalBytes} bytes`,
      );
    else {
      const verdict = await judgeArtifact(c.name, c.content, limits.allowedTypes);
      if ("reason" in verdict) refuse(verdict.reason);
      else {
        const saved = await o.store.save({
          ownerId: o.ownerId,
          userId: o.userId,
          name: c.name,
          mimeType: verdict.mimeType,
          content: c.content,
        });
        total += saved.size;
        out.artifacts.push({
          name: saved.name,
          size: saved.size,
          mimeType: saved.mimeType,
          url: o.urlOf(saved.name),
        });
      }
    }
  }
  return out;
}
