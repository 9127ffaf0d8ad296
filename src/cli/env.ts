/**
 * `warden env create|list|rm`: prebuilt environments in the data dir. Works
 * without the service (like `warden run`) and beside a running one.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { EnvironmentInfo } from "../contract/environment.js";
import { buildEnvironment } from "../environments/build.js";
import { EnvironmentStore } from "../environments/store.js";
import { WardenError } from "../errors.js";
import { createContext, openHost, type GlobalOptions } from "./context.js";

export interface EnvCreateOptions extends GlobalOptions {
  python?: boolean;
  pip?: string[];
  requirements?: string;
  fromDir?: string;
  node?: boolean;
  npm?: string[];
  quiet?: boolean;
  json?: boolean;
}

function storeOf(options: GlobalOptions): EnvironmentStore {
  const { config } = createContext(options);
  return new EnvironmentStore(resolve(config.dataDir));
}

function size(bytes: number | null): string {
  if (bytes === null) return "-";
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function describe(info: EnvironmentInfo): string {
  const packages = info.packages.map((p) => `${p.name}==${p.version}`).join(", ");
  return `${info.name}: ${info.languages.join("+")}, ${info.packages.length} packages (${packages}), ${size(info.sizeBytes)}, ${info.digest}`;
}

export async function envCreate(name: string, options: EnvCreateOptions): Promise<number> {
  const python = options.python || options.pip || options.requirements || options.fromDir;
  const node = options.node || options.npm;
  if (!python && !node)
    throw new WardenError("INVALID_REQUEST", "give --python and/or --node with their packages");
  if ((options.pip || options.requirements || options.fromDir) && !options.python)
    throw new WardenError(
      "INVALID_REQUEST",
      "--pip, --requirements and --from-dir go with --python",
    );
  if (options.npm && !options.node)
    throw new WardenError("INVALID_REQUEST", "--npm goes with --node");
  let requirements: string | undefined;
  if (options.requirements)
    requirements = await readFile(options.requirements, "utf8").catch(() => {
      throw new WardenError(
        "INVALID_REQUEST",
        `--requirements: cannot read ${options.requirements}`,
      );
    });
  const ctx = createContext(options);
  const store = new EnvironmentStore(resolve(ctx.config.dataDir));
  const host = await openHost(ctx);
  try {
    const info = await buildEnvironment(
      {
        host,
        store,
        config: ctx.config.environments,
        network: ctx.config.network,
        searchPath: ctx.config.sandbox.searchPath,
      },
      {
        name,
        python: python
          ? { pip: options.pip ?? [], requirements, fromDir: options.fromDir }
          : undefined,
        node: node ? { npm: options.npm ?? [] } : undefined,
        // The installer's own words, for the admin watching; never parsed.
        onOutput: options.quiet || options.json ? undefined : (c) => process.stderr.write(c.data),
      },
    );
    if (options.json) process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    else process.stdout.write(`created ${describe(info)}\n`);
    return 0;
  } finally {
    await host.close();
  }
}

export async function envList(options: GlobalOptions & { json?: boolean }): Promise<number> {
  const list = await storeOf(options).list();
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ environments: list }, null, 2)}\n`);
    return 0;
  }
  const rows = list.map((e) => [
    e.name,
    e.languages.join("+"),
    e.builtin ? "(host's system packages)" : String(e.packages.length),
    size(e.sizeBytes),
    e.digest ? e.digest.slice(0, 19) : "-",
    e.createdAt ?? "-",
  ]);
  const head = ["NAME", "LANGUAGES", "PACKAGES", "SIZE", "DIGEST", "CREATED"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [head, ...rows])
    process.stdout.write(
      `${row
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd()}\n`,
    );
  return 0;
}

export async function envRemove(name: string, options: GlobalOptions): Promise<number> {
  await storeOf(options).remove(name);
  process.stderr.write(`removed environment ${name}\n`);
  return 0;
}
