import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { WardenError, toErrorInfo, ERROR_CODES } from "../../src/errors.js";
import { RuntimeRegistry, expandTemplate, findTool } from "../../src/runtimes/registry.js";
import { CappedOutput } from "../../src/sandbox/output.js";
import { newBoxId, parseBoxName, currentOwner, isOwnerAlive } from "../../src/sandbox/owner.js";
import { checkWorkspacePath } from "../../src/sandbox/workspace.js";
import { ulid } from "../../src/util/ids.js";

describe("workspace paths", () => {
  it("accepts relative paths and normalises nothing away", () => {
    expect(checkWorkspacePath("main.py")).toBe("main.py");
    expect(checkWorkspacePath("src/lib/util.py")).toBe("src/lib/util.py");
  });
  it.each([
    ["", "empty"],
    ["/etc/passwd", "relative"],
    ["../x", "'..'"],
    ["a/../../x", "'..'"],
    ["a//b", "empty or '.'"],
    ["./a", "empty or '.'"],
    ["a\0b", "NUL"],
    ["x".repeat(300), "255"],
  ])("refuses %j (%s)", (path, why) => {
    expect(() => checkWorkspacePath(path, "files[0].path")).toThrow(why);
    expect(() => checkWorkspacePath(path, "files[0].path")).toThrow(/^files\[0\]\.path: /);
  });
});

describe("runtime registry", () => {
  it("never resolves a tool outside the system directories (pyenv shims under /root)", () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-path-"));
    const tool = join(dir, "python3");
    writeFileSync(tool, "#!/bin/sh\n");
    chmodSync(tool, 0o755);
    expect(findTool(["python3"], [dir])).toBeNull();
    // A link from a system-looking dir into a private one is refused by its real path.
    const linkDir = join(dir, "bin");
    mkdirSync(linkDir);
    symlinkSync(tool, join(linkDir, "python3"));
    expect(findTool(["python3"], [linkDir])).toBeNull();
    expect(findTool(["sh"], ["/usr/bin", "/bin"])).toMatch(/^\/(usr\/)?bin\//);
  });

  it("looks languages up by name, alias and extension, and explains what is missing", () => {
    const registry = new RuntimeRegistry(["/nonexistent"], [], {});
    expect(registry.lookup("py")?.language).toBe("python");
    expect(registry.lookup("C++")?.language).toBe("cpp");
    expect(registry.lookupByExtension(".ts")?.language).toBe("typescript");
    expect(() => registry.resolve("cobol")).toThrow(WardenError);
    expect(() => registry.resolve("python")).toThrow(/not installed on this host: missing python3/);
    expect(() => registry.resolve("typescript")).toThrow(/esbuild/);
  });

  it("lets config add a runtime", () => {
    const registry = new RuntimeRegistry(
      ["/usr/bin", "/bin"],
      [
        {
          language: "awk",
          fileName: "main.awk",
          tools: { awk: ["awk", "mawk", "gawk"] },
          run: ["{awk}", "-f", "{file}"],
          version: { tool: "awk", args: ["-W", "version"] },
        },
      ],
    );
    expect(registry.resolve("awk").tools.awk).toMatch(/awk/);
  });

  it("expands templates and refuses unknown placeholders", () => {
    expect(
      expandTemplate(["{cc}", "-o", "main", "{file}"], { cc: "/usr/bin/gcc", file: "a.c" }),
    ).toEqual(["/usr/bin/gcc", "-o", "main", "a.c"]);
    expect(() => expandTemplate(["{nope}"], {})).toThrow(/unknown placeholder/);
  });
});

describe("output capping", () => {
  it("keeps at most the cap, flags truncation, never splits a character", () => {
    const chunks: string[] = [];
    const out = new CappedOutput("stdout", 5, (c) => chunks.push(c.data));
    expect(out.push(Buffer.from("ab"))).toBe(true);
    expect(out.push(Buffer.from("cdéfgh"))).toBe(false);
    expect(out.truncated).toBe(true);
    expect(out.bytes).toBe(5);
    expect(out.push(Buffer.from("more"))).toBe(false);
    // "é" is two bytes; the cap falls inside it, so the decoder holds it back, then flushes a replacement.
    expect(out.text().startsWith("abcd")).toBe(true);
    expect(chunks.join("")).toBe(out.text());
  });
});

describe("ids, owners and errors", () => {
  it("makes sortable ULIDs", () => {
    const a = ulid(1_000);
    const b = ulid(2_000);
    expect(a).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(a < b).toBe(true);
  });

  it("encodes the owning process in box ids", () => {
    const id = newBoxId();
    const parsed = parseBoxName(`${id}-3`);
    expect(parsed?.boxId).toBe(id);
    expect(parsed?.owner).toEqual(currentOwner());
    expect(isOwnerAlive(currentOwner())).toBe(true);
    expect(isOwnerAlive({ pid: currentOwner().pid, startTicks: 1 })).toBe(false);
    expect(parseBoxName("user-made-dir")).toBeNull();
  });

  it("maps errors without leaking internals", () => {
    expect(new WardenError("RATE_LIMIT", "slow down").toInfo()).toEqual({
      code: "RATE_LIMIT",
      message: "slow down",
      retryable: true,
    });
    expect(toErrorInfo(new Error("secret path /etc/x"))).toEqual({
      code: "INTERNAL",
      message: "internal error",
      retryable: false,
    });
    expect(ERROR_CODES.INVALID_CODE.retryable).toBe(false);
  });
});
