/**
 * Reading what a compile step left in its workspace, to copy into every
 * case's fresh sandbox. The compiler ran untrusted code's build (and a
 * compiler can be made to write anything), so the workspace is hostile: it is
 * read like artifacts are (src/artifacts/collect.ts) — after every process of
 * the box has ended, lstat on every entry, O_NOFOLLOW on every open, only
 * regular files and directories — and bounded in bytes, files and depth.
 * A symbolic link is never followed: it is left out (a link to /etc/shadow
 * must not become a file of the next sandbox).
 */
import { constants } from "node:fs";
import { lstat, open, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { SandboxFile } from "../sandbox/types.js";
import { checkWorkspacePath } from "../sandbox/workspace.js";

/** Files read at most, and how deep: a tree of a million empty files is not walked. */
const MAX_FILES = 10_000;
const MAX_DEPTH = 16;

export type CompiledWorkspace = { files: SandboxFile[]; skipped: string[] } | { problem: string };

export async function readCompiledWorkspace(
  workspace: string,
  maxBytes: number,
): Promise<CompiledWorkspace> {
  const files: SandboxFile[] = [];
  const skipped: string[] = [];
  let budget = maxBytes;
  let problem: string | null = null;
  const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
    for (const entry of await readdir(dir)) {
      if (problem) return;
      const path = join(dir, entry);
      const name = prefix ? `${prefix}/${entry}` : entry;
      const st = await lstat(path);
      if (st.isDirectory()) {
        if (depth >= MAX_DEPTH) problem = `directories nested deeper than ${MAX_DEPTH}`;
        else await walk(path, name, depth + 1);
        continue;
      }
      if (!st.isFile() || !validPath(name)) {
        skipped.push(name); // a link, a FIFO, a socket, an odd name: never followed nor opened
        continue;
      }
      if (files.length >= MAX_FILES) {
        problem = `more than ${MAX_FILES} files`;
        return;
      }
      if (st.size > budget) {
        problem = `more than ${maxBytes} bytes`;
        return;
      }
      const handle = await open(
        path,
        constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
      );
      try {
        const opened = await handle.stat();
        // The box is dead, so nothing changes it; still, the size read is the size checked.
        if (!opened.isFile() || opened.size > budget) {
          problem = `more than ${maxBytes} bytes`;
          return;
        }
        const content = Buffer.alloc(opened.size);
        const { bytesRead } = await handle.read(content, 0, opened.size, 0);
        budget -= bytesRead;
        files.push({ path: name, content: content.subarray(0, bytesRead), mode: st.mode & 0o755 });
      } finally {
        await handle.close();
      }
    }
  };
  await walk(workspace, "", 0);
  return problem ? { problem } : { files, skipped };
}

function validPath(name: string): boolean {
  try {
    checkWorkspacePath(name, "path");
    return true;
  } catch {
    return false;
  }
}
