/**
 * The agent's extractor (native/agent-workspace.cjs) on its own, with a temp
 * dir as its /workspace: it re-checks what the host checked, so an archive
 * that climbs out, names an absolute path, holds a device or writes through a
 * link is refused and writes nothing outside, whatever reached it.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tar, type TarMember } from "../helpers/tar.js";

type Ops = {
  restoreStart(req: { id: number; maxEntries: number }): void;
  restoreMore(req: { op: string; target: number; data?: string }): void;
};
const factory = createRequire(import.meta.url)("../../native/agent-workspace.cjs") as (
  deps: unknown,
) => Ops;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Restores `archive` into a fresh dir in 700-byte pieces; returns what the agent answered. */
function restore(archive: Buffer, prepare?: (root: string, outside: string) => void) {
  const base = mkdtempSync(join(tmpdir(), "warden-restore-"));
  dirs.push(base);
  const root = join(base, "workspace");
  const outside = join(base, "outside");
  for (const d of [root, outside]) mkdirSync(d);
  prepare?.(root, outside);
  const answers: Record<string, unknown>[] = [];
  const ops = factory({
    send: (e: Record<string, unknown>) => answers.push(e),
    fail: (id: number, code: string, message: string) =>
      answers.push({ id, type: "error", code, message }),
    resolvePath: (p: string) => join(root, p),
    ROOT: root,
    DATA_PIECE: 192 * 1024,
  });
  ops.restoreStart({ id: 1, maxEntries: 100 });
  for (let at = 0; at < archive.length; at += 700)
    ops.restoreMore({
      op: "restore-data",
      target: 1,
      data: archive.subarray(at, at + 700).toString("base64"),
    });
  ops.restoreMore({ op: "restore-end", target: 1 });
  return { answers, root, outside };
}

describe("the agent's restore", () => {
  it("extracts files, directories and inside links (made last)", () => {
    const { answers, root } = restore(
      tar([
        { name: "d/", type: "5" },
        { name: "d/a.txt", content: "hello" },
        { name: "l", type: "2", linkname: "d/a.txt" },
      ]),
    );
    expect(answers).toEqual([{ id: 1, type: "ok" }]);
    expect(readFileSync(join(root, "d/a.txt"), "utf8")).toBe("hello");
    expect(readlinkSync(join(root, "l"))).toBe("d/a.txt");
  });

  const hostile: [string, TarMember[]][] = [
    ["../", [{ name: "../outside/x", content: "pwned" }]],
    ["an absolute path", [{ name: `/tmp/warden-restore-abs-${process.pid}`, content: "pwned" }]],
    [
      "a link out, then a write through it",
      [
        { name: "o", type: "2", linkname: "../outside" },
        { name: "o/x", content: "pwned" },
      ],
    ],
    ["a device", [{ name: "sda", type: "4" }]],
  ];
  for (const [what, members] of hostile)
    it(`refuses ${what}, writing nothing outside`, () => {
      const { answers, outside } = restore(tar(members));
      expect(answers).toHaveLength(1);
      expect(answers[0]).toMatchObject({ id: 1, type: "error", code: "INVALID_REQUEST" });
      expect(existsSync(join(outside, "x"))).toBe(false);
      expect(existsSync(`/tmp/warden-restore-abs-${process.pid}`)).toBe(false);
    });

  it("never writes through a link already in the workspace", () => {
    const { answers, outside } = restore(tar([{ name: "a", content: "pwned" }]), (root, out) => {
      writeFileSync(join(out, "target"), "safe");
      symlinkSync(join(out, "target"), join(root, "a"));
    });
    expect(answers[0]).toMatchObject({ id: 1, type: "error" });
    expect(readFileSync(join(outside, "target"), "utf8")).toBe("safe");
  });
});
