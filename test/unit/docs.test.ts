/**
 * The docs stay true to the code where a machine can check them: the
 * configuration reference is the schema's, every dependency is explained, and
 * every relative link between the pages leads somewhere.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  REFERENCE_END,
  REFERENCE_START,
  configReference,
  configRows,
} from "../../src/config/reference.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

/** A table as rows of trimmed cells, so Prettier's padding does not matter. */
const cells = (table: string) =>
  table
    .trim()
    .split("\n")
    .map((line) =>
      line
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim().replace(/^-{3,}$/, "---"))
        .join("|"),
    );

describe("docs/configuration.md", () => {
  it("holds the reference generated from the schema (npm run build && node scripts/config-docs.mjs --write)", () => {
    const page = read("docs/configuration.md");
    const start = page.indexOf(REFERENCE_START);
    const end = page.indexOf(REFERENCE_END);
    expect(start).toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThan(start);
    expect(cells(page.slice(start + REFERENCE_START.length, end))).toEqual(
      cells(configReference()),
    );
  });

  it("describes every setting", () => {
    const undescribed = configRows()
      .filter((row) => row.meaning === "")
      .map((row) => row.key);
    expect(undescribed).toEqual([]);
  });
});

describe("docs/dependencies.md", () => {
  it("says why each dependency and devDependency is there", () => {
    const pkg = JSON.parse(read("package.json")) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const page = read("docs/dependencies.md");
    const missing = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies)].filter(
      (name) => !page.includes(`\`${name}\``),
    );
    expect(missing).toEqual([]);
  });
});

describe("links between the pages", () => {
  const pages = [
    "README.md",
    ...readdirSync(join(root, "docs"), { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".md"))
      .map((f) => join("docs", f)),
  ];

  /** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes. */
  const anchors = (path: string) =>
    new Set(
      [...readFileSync(path, "utf8").matchAll(/^#+ (.*)$/gm)].map((m) =>
        m[1]!
          .toLowerCase()
          .replace(/[^\p{L}\p{N}\s_-]/gu, "")
          .replace(/\s/g, "-"),
      ),
    );

  it.each(pages)("%s links only to files and headings that exist", (page) => {
    const text = read(page);
    const broken = [...text.matchAll(/\]\(([^)\s]+)\)/g)]
      .map((m) => m[1]!)
      .filter((link) => !/^[a-z]+:/.test(link))
      .filter((link) => {
        const [file, anchor] = link.split("#");
        const target = file ? resolve(root, dirname(page), file) : join(root, page);
        if (!existsSync(target)) return true;
        return anchor !== undefined && target.endsWith(".md") && !anchors(target).has(anchor);
      });
    expect(broken).toEqual([]);
  });
});
