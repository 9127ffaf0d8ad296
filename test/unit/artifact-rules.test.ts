import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { artifactNameProblem, judgeArtifact } from "../../src/artifacts/rules.js";
import { DEFAULT_ARTIFACT_TYPES } from "../../src/config/schema.js";

const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
const judge = (name: string, content: Buffer | string) =>
  judgeArtifact(name, Buffer.from(content), DEFAULT_ARTIFACT_TYPES);

describe("artifact rules", () => {
  it("types files by content, and refuses names that lie about it", async () => {
    expect(await judge("a.png", PNG)).toEqual({ mimeType: "image/png" });
    expect(await judge("noext", PNG)).toEqual({ mimeType: "image/png" });
    expect(await judge("a.csv", "x,y\n")).toEqual({ mimeType: "text/csv" });
    expect(await judge("notes", "hello")).toEqual({ mimeType: "text/plain" });
    expect(await judge("a.svg", '<svg xmlns="http://www.w3.org/2000/svg"/>')).toEqual({
      mimeType: "image/svg+xml",
    });
    expect(await judge("a.svg", "alert(1)")).toEqual({ reason: expect.stringMatching(/not SVG/) });
    expect(await judge("a.png", "just text")).toEqual({
      reason: expect.stringMatching(/says \.png but the content is text/),
    });
    expect(await judge("a.txt", PNG)).toEqual({ reason: expect.stringMatching(/image\/png/) });
    expect(await judge("a.jpg", PNG)).toEqual({ reason: expect.stringMatching(/image\/png/) });
  });

  it("refuses programs and unknown binaries", async () => {
    const elf = readFileSync("/bin/true");
    expect(await judge("run", elf)).toEqual({
      reason: expect.stringMatching(/x-elf is not allowed/),
    });
    expect(await judge("x.bin", Buffer.from([0, 1, 2, 3, 255, 254]))).toEqual({
      reason: "unrecognised binary content",
    });
    expect(await judgeArtifact("a.png", PNG, ["text/plain"])).toEqual({
      reason: "type image/png is not allowed",
    });
  });

  it("accepts plain relative names only", () => {
    expect(artifactNameProblem("plots/a.png")).toBeNull();
    expect(artifactNameProblem("../a")).toMatch(/\.\./);
    expect(artifactNameProblem("a\nb")).toMatch(/characters/);
    expect(artifactNameProblem("x".repeat(300))).toMatch(/255/);
  });
});
