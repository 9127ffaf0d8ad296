#!/usr/bin/env node
// Prints the configuration reference generated from the zod schema in dist/
// (run `npm run build` first), or with --write puts it into
// docs/configuration.md between its markers. test/unit/config-docs.test.ts
// fails when the page is out of date with the schema.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { configReference, REFERENCE_START, REFERENCE_END } = await import(
  join(root, "dist", "config", "reference.js")
);
const table = configReference();

if (!process.argv.includes("--write")) {
  process.stdout.write(`${table}\n`);
} else {
  const page = join(root, "docs", "configuration.md");
  const text = readFileSync(page, "utf8");
  const start = text.indexOf(REFERENCE_START);
  const end = text.indexOf(REFERENCE_END);
  if (start < 0 || end < start) {
    console.error(`${page}: the markers ${REFERENCE_START} and ${REFERENCE_END} are missing`);
    process.exit(1);
  }
  const head = text.slice(0, start + REFERENCE_START.length);
  writeFileSync(page, `${head}\n\n${table}\n\n${text.slice(end)}`);
  process.stdout.write(`${page}: configuration reference updated\n`);
}
