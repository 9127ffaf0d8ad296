/** Environments' pure parts: names, package metadata parsing (strict, bounded), argv, pool keys. */
import { describe, expect, it } from "vitest";
import { mountOf } from "../../src/environments/layout.js";
import { parseMetadata, parsePackageJson } from "../../src/environments/packages.js";
import { checkEnvironmentName } from "../../src/environments/store.js";
import { buildExecArgs } from "../../src/sandbox/exec-args.js";

describe("environment names", () => {
  it("takes lower-case names and refuses paths, upper case and long ones", () => {
    expect(checkEnvironmentName("data-sci.v2_1", "name")).toBe("data-sci.v2_1");
    for (const bad of ["", "../x", "a/b", "Data", ".hidden", "-x", "a".repeat(64), "a b"])
      expect(() => checkEnvironmentName(bad, "environment")).toThrow(/^environment: /);
  });
});

describe("package metadata from an installer", () => {
  it("reads Name and Version from the header only", () => {
    expect(
      parseMetadata("Metadata-Version: 2.1\nName: numpy\nVersion: 2.1.0\n\nName: evil\n"),
    ).toEqual({
      name: "numpy",
      version: "2.1.0",
    });
    expect(parseMetadata("Name: a\r\nVersion: 1.0\r\n\r\n")).toEqual({ name: "a", version: "1.0" });
  });
  it("refuses names and versions that are not plain", () => {
    expect(parseMetadata("Name: <script>\nVersion: 1\n")).toBeNull();
    expect(parseMetadata("Name: a\nVersion: 1 \u001b[31m\n")).toBeNull();
    expect(parseMetadata("Name: a\n")).toBeNull();
    expect(parseMetadata("x".repeat(100_000))).toBeNull();
  });
  it("reads package.json strictly", () => {
    expect(parsePackageJson('{"name":"@s/p","version":"1.2.3"}')).toEqual({
      name: "@s/p",
      version: "1.2.3",
    });
    expect(parsePackageJson('{"name":"../x","version":"1"}')).toBeNull();
    expect(parsePackageJson('{"name":"a","version":{"x":1}}')).toBeNull();
    expect(parsePackageJson("not json")).toBeNull();
    expect(parsePackageJson("[]")).toBeNull();
  });
});

describe("how an environment is mounted", () => {
  it("binds the tree (and node_modules) and names only Warden's variables", () => {
    const m = mountOf("ds", "ds@t", "/data/environments/ds/tree", ["python", "node"]);
    expect(m.binds).toEqual([
      { source: "/data/environments/ds/tree", target: "/.warden/env" },
      { source: "/data/environments/ds/tree/node/node_modules", target: "/node_modules" },
    ]);
    expect(m.env).toEqual({ PYTHONPATH: "/.warden/env/site" });
    expect(mountOf("n", "n@t", "/t", ["node"]).env).toEqual({});
  });
  it("has the mounting helper bind each tree as root, beside the workspace", () => {
    const args = buildExecArgs({
      bwrapPath: "/usr/bin/bwrap",
      bwrapArgs: [],
      uid: 100000,
      gid: 100000,
      cgroupProcsFiles: [],
      rlimits: {},
      workspace: {
        dir: "/run/w/b1",
        mount: { bytes: 1, inodes: 1, binds: [{ source: "/d/tree", name: "bind0" }] },
      },
    });
    const at = args.indexOf("--ro-bind");
    expect(args.slice(at, at + 3)).toEqual(["--ro-bind", "/d/tree", "bind0"]);
    expect(args.indexOf("--mount")).toBeLessThan(at);
  });
});
