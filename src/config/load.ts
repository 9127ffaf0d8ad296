import { readFileSync } from "node:fs";
import type { z } from "zod";
import { WardenError } from "../errors.js";
import { ConfigSchema, type Config } from "./schema.js";
import { CONFIG_ENV, ENV } from "./env.js";

export interface LoadConfigOptions {
  /** JSON config file; defaults to $WARDEN_CONFIG when set. */
  file?: string | undefined;
  /** The environment to read WARDEN_* variables from. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags, as dotted paths; they win over everything. */
  overrides?: Record<string, unknown>;
}

type Json = Record<string, unknown>;

function setPath(target: Json, dotted: string, value: unknown): void {
  const keys = dotted.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null) node[key] = {};
    node = node[key] as Json;
  }
  node[keys[keys.length - 1]!] = value;
}

/** Settings that are text whatever they look like: an all-digit secret is still a secret. */
const TEXT_SETTINGS = new Set(["cluster.secret", "cluster.databaseUrl", "cluster.redisUrl"]);

/** Env values are strings; numbers and booleans are read as such. */
function parseEnvValue(raw: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (raw === "true" || raw === "false") return raw === "true";
  return raw;
}

/** Formats zod issues as the `path: message` lines operators see. */
export function formatIssues(error: z.ZodError, prefix = ""): string {
  return error.issues
    .map((issue) => `${prefix}${issue.path.join(".") || "(root)"}: ${issue.message}`)
    .join("\n");
}

/** Builds the effective configuration: file, then env, then flags. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env[ENV.config];
  let raw: Json = {};
  if (file) {
    try {
      raw = JSON.parse(readFileSync(file, "utf8")) as Json;
    } catch (cause) {
      throw new WardenError("INVALID_REQUEST", `config file ${file}: ${(cause as Error).message}`);
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw new WardenError("INVALID_REQUEST", `config file ${file}: must hold a JSON object`);
  }
  for (const [path, name] of Object.entries(CONFIG_ENV)) {
    const value = env[name];
    if (value !== undefined && value !== "")
      setPath(raw, path, TEXT_SETTINGS.has(path) ? value : parseEnvValue(value));
  }
  for (const [path, value] of Object.entries(options.overrides ?? {}))
    if (value !== undefined) setPath(raw, path, value);
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success)
    throw new WardenError(
      "INVALID_REQUEST",
      `invalid configuration:\n${formatIssues(parsed.error)}`,
    );
  return parsed.data;
}
