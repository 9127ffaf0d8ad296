/**
 * The runtime registry: built-in and configured language definitions, with
 * their tools resolved to real system paths. Resolution never looks outside
 * the configured system directories — on many hosts `python3` on PATH is a
 * shim under /root, which a sandbox must not see and could not run.
 */
import { execFile } from "node:child_process";
import { accessSync, constants, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { WardenError } from "../errors.js";
import { SYSTEM_PATHS } from "../sandbox/host-layout.js";
import type { ReadOnlyMount } from "../sandbox/types.js";
import { BUILTIN_RUNTIMES } from "./builtin.js";
import {
  RuntimeDefinitionSchema,
  type RuntimeDefinition,
  type RuntimeDefinitionInput,
} from "../config/runtime-definition.js";

const run = promisify(execFile);

/** Inside every sandbox, Warden's private tools appear here (read-only). */
export const PRIVATE_TOOL_DIR = "/.warden/lib";

export interface ResolvedRuntime {
  definition: RuntimeDefinition;
  /** Tool name → absolute path valid inside the sandbox. */
  tools: Record<string, string>;
  /** Private tools to bind in: run-dir file name → path inside. */
  privateMounts: { name: string; target: string }[];
}

export interface RuntimeInfo {
  language: string;
  aliases: string[];
  extensions: string[];
  available: boolean;
  version: string | null;
  /** Why it is unavailable. */
  missing: string[];
  tools: Record<string, string>;
}

/** Host paths of files Warden ships for use inside sandboxes. */
export function shippedFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const files: Record<string, string> = {};
  try {
    files.esbuild = require.resolve(`@esbuild/${process.platform}-${process.arch}/bin/esbuild`);
  } catch {
    // not installed for this platform: TypeScript is then unavailable
  }
  return files;
}

/** Is `path` inside a directory every sandbox sees? */
function visibleInSandbox(path: string): boolean {
  return SYSTEM_PATHS.some((dir) => path === dir || path.startsWith(`${dir}/`));
}

export function findTool(
  candidates: readonly string[],
  searchPath: readonly string[],
): string | null {
  for (const name of candidates) {
    for (const dir of searchPath) {
      const path = join(dir, name);
      try {
        accessSync(path, constants.X_OK);
        const real = realpathSync(path);
        if (visibleInSandbox(real)) return real;
      } catch {
        // not here
      }
    }
  }
  return null;
}

/** Are a resolved runtime's host tools still executable where they were found? */
function stillThere(runtime: ResolvedRuntime): boolean {
  for (const path of Object.values(runtime.tools)) {
    if (path.startsWith(`${PRIVATE_TOOL_DIR}/`)) continue;
    try {
      accessSync(path, constants.X_OK);
    } catch {
      return false;
    }
  }
  return true;
}

export class RuntimeRegistry {
  private readonly byName = new Map<string, RuntimeDefinition>();
  private readonly versions = new Map<string, Promise<string | null>>();

  constructor(
    private readonly searchPath: readonly string[],
    extra: readonly RuntimeDefinitionInput[] = [],
    private readonly shipped: Readonly<Record<string, string>> = shippedFiles(),
  ) {
    for (const input of [...BUILTIN_RUNTIMES, ...extra]) {
      const def = RuntimeDefinitionSchema.parse(input);
      this.byName.set(def.language, def);
    }
  }

  /** Files to copy into the run directory for private tools. */
  privateFiles(): Record<string, string> {
    return { ...this.shipped };
  }

  definitions(): RuntimeDefinition[] {
    return [...this.byName.values()];
  }

  /** Finds a definition by name, alias or (with `byExtension`) file extension. */
  lookup(name: string): RuntimeDefinition | undefined {
    const key = name.toLowerCase();
    const direct = this.byName.get(key);
    if (direct) return direct;
    return this.definitions().find((d) => d.aliases.includes(key));
  }

  lookupByExtension(extension: string): RuntimeDefinition | undefined {
    return this.definitions().find((d) => d.extensions.includes(extension.toLowerCase()));
  }

  private resolveDefinition(def: RuntimeDefinition): {
    resolved: ResolvedRuntime;
    missing: string[];
  } {
    const tools: Record<string, string> = {};
    const missing: string[] = [];
    for (const [tool, candidates] of Object.entries(def.tools)) {
      const path = findTool(candidates, this.searchPath);
      if (path) tools[tool] = path;
      else missing.push(`${candidates.join(" or ")} (not found in ${this.searchPath.join(":")})`);
    }
    const privateMounts: ResolvedRuntime["privateMounts"] = [];
    for (const [tool, file] of Object.entries(def.privateTools)) {
      if (!this.shipped[file]) {
        missing.push(`${file} (Warden's copy is not installed)`);
        continue;
      }
      const target = `${PRIVATE_TOOL_DIR}/${file}`;
      tools[tool] = target;
      privateMounts.push({ name: file, target });
    }
    return { resolved: { definition: def, tools, privateMounts }, missing };
  }

  /** Last good resolution per language (frozen: callers share it). */
  private readonly resolved = new Map<string, Readonly<ResolvedRuntime>>();

  /**
   * The runtime ready to run, or UNSUPPORTED_LANGUAGE saying why not. Called
   * for every run: a runtime resolved before is only checked to still be
   * there (one access() per tool); the full search, which tries every
   * directory of the search path and throws for each miss, runs again only
   * when one is gone.
   */
  resolve(language: string): ResolvedRuntime {
    const def = this.lookup(language);
    if (!def)
      throw new WardenError(
        "UNSUPPORTED_LANGUAGE",
        `language "${language}" is not supported; known: ${[...this.byName.keys()].join(", ")}`,
      );
    const known = this.resolved.get(def.language);
    if (known && stillThere(known)) return known;
    const { resolved, missing } = this.resolveDefinition(def);
    if (missing.length > 0) {
      this.resolved.delete(def.language);
      throw new WardenError(
        "UNSUPPORTED_LANGUAGE",
        `language "${def.language}" is not installed on this host: missing ${missing.join(", ")}`,
      );
    }
    Object.freeze(resolved.tools);
    Object.freeze(resolved.privateMounts);
    this.resolved.set(def.language, Object.freeze(resolved));
    return resolved;
  }

  /** Asks the runtime's tool for its version (on the host, once). */
  version(language: string): Promise<string | null> {
    const def = this.lookup(language);
    if (!def) return Promise.resolve(null);
    let cached = this.versions.get(def.language);
    if (!cached) {
      const { resolved, missing } = this.resolveDefinition(def);
      const tool = resolved.tools[def.version.tool];
      cached =
        missing.length > 0 || !tool || tool.startsWith(PRIVATE_TOOL_DIR)
          ? Promise.resolve(null)
          : run(tool, def.version.args, { timeout: 15_000 }).then(
              ({ stdout, stderr }) =>
                new RegExp(def.version.pattern).exec(`${stdout}\n${stderr}`)?.[1] ?? null,
              () => null,
            );
      this.versions.set(def.language, cached);
    }
    return cached;
  }

  private listed: Promise<RuntimeInfo[]> | undefined;

  /** The languages runnable here, as clients see them (no host paths, no tools). */
  async available(): Promise<
    Pick<RuntimeInfo, "language" | "aliases" | "extensions" | "version">[]
  > {
    return (await this.list())
      .filter((r) => r.available)
      .map(({ language, aliases, extensions, version }) => ({
        language,
        aliases,
        extensions,
        version,
      }));
  }

  /**
   * Every known runtime with availability and version, for `doctor` and
   * `GET /v1/runtimes`. Detected once per process: install a runtime, restart.
   */
  list(): Promise<RuntimeInfo[]> {
    this.listed ??= this.detect();
    return this.listed;
  }

  private async detect(): Promise<RuntimeInfo[]> {
    return Promise.all(
      this.definitions().map(async (def) => {
        const { resolved, missing } = this.resolveDefinition(def);
        return {
          language: def.language,
          aliases: def.aliases,
          extensions: def.extensions,
          available: missing.length === 0,
          version: missing.length === 0 ? await this.version(def.language) : null,
          missing,
          tools: resolved.tools,
        };
      }),
    );
  }
}

/** Expands `{name}` placeholders; an unknown one is a definition bug, reported as such. */
export function expandTemplate(
  argv: readonly string[],
  vars: Readonly<Record<string, string>>,
): string[] {
  return argv.map((arg) =>
    arg.replace(/\{([a-zA-Z][a-zA-Z0-9]*)\}/g, (_, name: string) => {
      const value = vars[name];
      if (value === undefined)
        throw new WardenError("INTERNAL", `runtime template uses unknown placeholder {${name}}`);
      return value;
    }),
  );
}

export function privateMountsFor(
  runtime: ResolvedRuntime,
  privateFile: (name: string) => string,
): ReadOnlyMount[] {
  return runtime.privateMounts.map((m) => ({ source: privateFile(m.name), target: m.target }));
}
