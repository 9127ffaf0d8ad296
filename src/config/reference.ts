/**
 * The configuration reference in docs/configuration.md, written from the zod
 * schema itself: every key, its environment variable, its default and its
 * description. `node scripts/config-docs.mjs --write` puts it in the page, and
 * test/unit/docs.test.ts fails when the page and the schema disagree, so the reference
 * cannot drift from the code.
 */
import type { z } from "zod";
import { CONFIG_ENV } from "./env.js";
import { ConfigSchema } from "./schema.js";

/** The markers around the generated part of docs/configuration.md. */
export const REFERENCE_START = "<!-- config-reference:start (scripts/config-docs.mjs) -->";
export const REFERENCE_END = "<!-- config-reference:end -->";

const MiB = 1024 * 1024;

interface Row {
  key: string;
  env: string;
  default: string;
  meaning: string;
}

// zod 4 keeps each schema's kind and parts in `def`; only what we read is typed.
interface Def {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  entries?: Record<string, string>;
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { def: Def }).def;

/** The schema under `.default()` and `.optional()` wrappers, with the outermost description. */
function unwrap(schema: z.ZodType): { inner: z.ZodType; description: string | undefined } {
  let inner = schema;
  let description = schema.description;
  for (;;) {
    const def = defOf(inner);
    if ((def.type !== "default" && def.type !== "optional") || !def.innerType) break;
    inner = def.innerType;
    description ??= inner.description;
  }
  return { inner, description };
}

function bytes(value: number): string {
  if (value >= MiB && value % MiB === 0) return `${value / MiB} MiB`;
  if (value >= 1024 && value % 1024 === 0) return `${value / 1024} KiB`;
  return String(value);
}

function formatDefault(key: string, value: unknown): string {
  if (value === undefined) return "none";
  if (typeof value === "number") {
    if (/Bytes$/.test(key)) return bytes(value);
    return String(value);
  }
  if (Array.isArray(value) && value.length > 4) return `${value.length} entries (see the schema)`;
  return `\`${JSON.stringify(value)}\``;
}

function walk(
  shape: Record<string, z.ZodType>,
  defaults: Record<string, unknown>,
  prefix: string,
  rows: Row[],
): void {
  for (const [name, field] of Object.entries(shape)) {
    const key = prefix + name;
    const value = defaults[name];
    const { inner, description } = unwrap(field);
    const def = defOf(inner);
    const outer = defOf(field);
    // Objects with a default are groups of settings: list their members. An
    // optional object (server.tls) is one setting.
    if (def.type === "object" && def.shape && outer.type === "default") {
      walk(def.shape, value as Record<string, unknown>, `${key}.`, rows);
      continue;
    }
    let meaning = description ?? "";
    if (def.type === "enum" && def.entries)
      meaning += `${meaning ? " " : ""}One of: ${Object.keys(def.entries).join(", ")}.`;
    if (def.type === "object" && def.shape)
      meaning += ` Shape: \`{${Object.keys(def.shape).join(", ")}}\`.`;
    rows.push({
      key,
      env: (CONFIG_ENV as Record<string, string>)[key] ?? "",
      default: formatDefault(key, value),
      meaning: meaning.trim(),
    });
  }
}

/** Every setting, in schema order (nested groups as dotted keys). */
export function configRows(): Row[] {
  const rows: Row[] = [];
  // The defaults a config without any setting gets, nested groups included.
  const defaults = ConfigSchema.parse({}) as Record<string, unknown>;
  walk(ConfigSchema.shape, defaults, "", rows);
  return rows;
}

/** The markdown table that belongs between the markers. */
export function configReference(): string {
  const cell = (text: string) => text.replace(/\|/g, "\\|");
  const lines = ["| key | env | default | meaning |", "| --- | --- | --- | --- |"];
  for (const row of configRows())
    lines.push(
      `| \`${row.key}\` | ${row.env ? `\`${row.env}\`` : ""} | ${cell(row.default)} | ${cell(row.meaning)} |`,
    );
  return lines.join("\n");
}
