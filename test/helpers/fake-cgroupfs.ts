/** A fake cgroupfs in a temp dir, for the cgroup drivers' file protocol (no root, no kernel). */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";

const dirs: string[] = [];

/** A new empty root, removed after the test. */
export function fakeRoot(): string {
  const d = mkdtempSync(join(tmpdir(), "warden-cgfs-"));
  dirs.push(d);
  return d;
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

export const read = (...p: string[]): string => readFileSync(join(...p), "utf8");
