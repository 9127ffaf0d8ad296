/**
 * `warden usage`, `warden quota set|list|rm`, `warden keys rotate|update`:
 * usage reports, quota rules and key changes on the configured store (the
 * data dir's SQLite, or the cluster's PostgreSQL), like `warden keys`.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { WardenError } from "../errors.js";
import { updateKey } from "../executions/new-key.js";
import { ENV_ADMIN_KEY_ID, KeyPatchSchema } from "../store/keys.js";
import { keyIsolationFlags } from "./isolation-flags.js";
import { databaseUrlOf, openStore } from "../store/open.js";
import { QUOTA_METRICS, QUOTA_PERIODS, QuotaIdSchema } from "../store/quotas.js";
import type { Store } from "../store/store.js";
import { exportStream } from "../usage/export.js";
import { QuotaEnforcer } from "../usage/quotas.js";
import { readRows, toUsageRow, usageReport } from "../usage/report.js";
import { createContext, type GlobalOptions } from "./context.js";

async function withStore<T>(
  options: GlobalOptions,
  fn: (store: Store, config: ReturnType<typeof createContext>["config"]) => Promise<T>,
): Promise<T> {
  const { config } = createContext(options);
  const store = await openStore({
    dataDir: resolve(config.dataDir),
    databaseUrl: databaseUrlOf(config),
    applicationName: "warden usage",
  });
  try {
    return await fn(store, config);
  } finally {
    await store.close();
  }
}

const print = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};

function date(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms))
    throw new WardenError("INVALID_REQUEST", `--${name}: not a date (ISO 8601)`);
  return ms;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new WardenError("INVALID_REQUEST", `--${name}: one of ${allowed.join(", ")}`);
  return value as T;
}

interface UsageOptions {
  from?: string;
  to?: string;
  granularity: string;
  user?: string;
  key?: string;
  groupBy: string;
  format: string;
}

async function usageCommand(options: GlobalOptions & UsageOptions): Promise<number> {
  const toMs = date("to", options.to) ?? Date.now();
  const query = {
    fromMs: date("from", options.from) ?? toMs - 30 * 86_400_000,
    toMs,
    granularity: oneOf("granularity", options.granularity, ["hour", "day", "month"] as const),
    userId: options.user,
    keyId: options.key,
    groupBy: oneOf("group-by", options.groupBy, ["user", "key", "none"] as const),
  };
  const format = oneOf("format", options.format, ["json", "csv", "ndjson"] as const);
  await withStore(options, async (store, config) => {
    if (format === "json") return print(await usageReport(store.usage, config.usage, query));
    const rows = await readRows(
      store.usage,
      query,
      config.usage.maxExportRows,
      "usage.maxExportRows",
    );
    for await (const chunk of exportStream(
      rows.map((r) => toUsageRow(r)),
      format,
    ))
      process.stdout.write(chunk as string);
  });
  return 0;
}

interface QuotaSetOptions {
  user?: string;
  key?: string;
  metric: string;
  period: string;
  limit: string;
}

async function quotaSet(options: GlobalOptions & QuotaSetOptions): Promise<number> {
  if ((options.user === undefined) === (options.key === undefined))
    throw new WardenError("INVALID_REQUEST", "--user, --key: name exactly one of them");
  const limit = Number(options.limit);
  if (!Number.isFinite(limit) || limit < 0)
    throw new WardenError("INVALID_REQUEST", "--limit: a number ≥ 0");
  await withStore(options, async (store) => {
    const rule = await store.quotas.put({
      subjectType: options.user !== undefined ? "user" : "key",
      subjectId: (options.user ?? options.key)!,
      metric: oneOf("metric", options.metric, QUOTA_METRICS),
      period: oneOf("period", options.period, QUOTA_PERIODS),
      limit,
    });
    print(
      await new QuotaEnforcer({ quotas: store.quotas, usage: store.usage, cacheMs: 0 }).view(rule),
    );
  });
  return 0;
}

async function quotaList(
  options: GlobalOptions & { user?: string; key?: string },
): Promise<number> {
  await withStore(options, async (store) => {
    const filter =
      options.user !== undefined
        ? { subjectType: "user" as const, subjectId: options.user }
        : options.key !== undefined
          ? { subjectType: "key" as const, subjectId: options.key }
          : {};
    const views = new QuotaEnforcer({ quotas: store.quotas, usage: store.usage, cacheMs: 0 });
    print({
      quotas: await Promise.all((await store.quotas.list(filter)).map((r) => views.view(r))),
    });
  });
  return 0;
}

async function quotaRm(options: GlobalOptions & { id: string }): Promise<number> {
  const id = QuotaIdSchema.safeParse(options.id);
  if (!id.success) throw new WardenError("INVALID_REQUEST", "id: not a quota id (see quota list)");
  await withStore(options, async (store) => {
    if (!(await store.quotas.remove(id.data)))
      throw new WardenError("NOT_FOUND", `no quota ${id.data}`);
    process.stderr.write(`removed ${id.data}\n`);
  });
  return 0;
}

async function keysRotate(options: GlobalOptions & { id: string }): Promise<number> {
  if (options.id === ENV_ADMIN_KEY_ID)
    throw new WardenError(
      "INVALID_REQUEST",
      "id: this key follows WARDEN_ADMIN_TOKEN; change the variable instead",
    );
  await withStore(options, async (store) => {
    const rotated = await store.keys.rotate(options.id);
    if (!rotated) throw new WardenError("NOT_FOUND", `no active key ${options.id}`);
    process.stdout.write(`${rotated.token}\n`);
    process.stderr.write(
      `rotated ${options.id}; the old token is refused from now on, the new one is shown once\n`,
    );
  });
  return 0;
}

interface KeysUpdateOptions {
  name?: string;
  scopes?: string;
  allowNet?: string;
  policy?: string;
  isolation?: string;
  forceIsolation?: boolean;
}

async function keysUpdate(
  options: GlobalOptions & KeysUpdateOptions & { id: string },
): Promise<number> {
  const list = (text: string | undefined) =>
    text === undefined
      ? undefined
      : text
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
  const patch = KeyPatchSchema.safeParse({
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.scopes !== undefined ? { scopes: list(options.scopes) } : {}),
    ...(options.allowNet !== undefined ? { networkAllow: list(options.allowNet) } : {}),
    ...(options.policy !== undefined
      ? { policy: options.policy === "server" ? null : options.policy }
      : {}),
    ...keyIsolationFlags(options, true),
  });
  if (!patch.success)
    throw new WardenError(
      "INVALID_REQUEST",
      patch.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`).join("; "),
    );
  await withStore(options, async (store, config) => {
    const key = await updateKey(store.keys, config.network, options.id, patch.data);
    if (!key) throw new WardenError("NOT_FOUND", `no active key ${options.id}`);
    print(key);
  });
  return 0;
}

/** Adds the commands to the CLI (src/cli/main.ts). */
export function usageCommands(cli: Command, keys: Command, setExit: (code: number) => void): void {
  const globals = (cmd: Command) => cmd.optsWithGlobals<GlobalOptions>();
  cli
    .command("usage")
    .description("usage per hour, day or month (docs/usage.md)")
    .option("--from <date>", "start, ISO 8601 (default: 30 days before --to)")
    .option("--to <date>", "end, ISO 8601 (default: now)")
    .option("--granularity <g>", "hour, day or month", "day")
    .option("--user <userId>", "only this user")
    .option("--key <keyId>", "only this key")
    .option("--group-by <g>", "user, key or none", "none")
    .option("--format <f>", "json, csv or ndjson", "json")
    .action(async (opts: UsageOptions, cmd: Command) =>
      setExit(await usageCommand({ ...globals(cmd), ...opts })),
    );
  const quota = cli.command("quota").description("quotas per user or key");
  quota
    .command("set")
    .description("set a quota (again: replaces its limit)")
    .option("--user <userId>", "the user it holds")
    .option("--key <keyId>", "the key it holds")
    .requiredOption("--metric <m>", QUOTA_METRICS.join(", "))
    .requiredOption("--period <p>", QUOTA_PERIODS.join(", "))
    .requiredOption("--limit <n>", "the most per period")
    .action(async (opts: QuotaSetOptions, cmd: Command) =>
      setExit(await quotaSet({ ...globals(cmd), ...opts })),
    );
  quota
    .command("list")
    .description("quotas with what is used of each now")
    .option("--user <userId>", "only this user's")
    .option("--key <keyId>", "only this key's")
    .action(async (opts: { user?: string; key?: string }, cmd: Command) =>
      setExit(await quotaList({ ...globals(cmd), ...opts })),
    );
  quota
    .command("rm")
    .description("remove a quota by id")
    .argument("<id>", "quota id (see quota list)")
    .action(async (id: string, _opts: unknown, cmd: Command) =>
      setExit(await quotaRm({ ...globals(cmd), id })),
    );
  keys
    .command("rotate")
    .description("a new token for a key (printed once); the old one stops working")
    .argument("<id>", "key id (see keys list)")
    .action(async (id: string, _opts: unknown, cmd: Command) =>
      setExit(await keysRotate({ ...globals(cmd), id })),
    );
  keys
    .command("update")
    .description("change a key's name, scopes, egress allowlist, policy or isolation tier")
    .argument("<id>", "key id (see keys list)")
    .option("--name <name>", "a new label")
    .option("--scopes <list>", "comma-separated: execute, sessions, admin, delegate")
    .option("--allow-net <hosts>", "egress within network.allow ('' for the server's)")
    .option("--policy <mode>", "off, audit, block, or server (the server's)")
    .option("--isolation <tier>", "namespaces, gvisor, or server (the server's)")
    .option("--force-isolation", "the key can never run outside its tier (gvisor only)")
    .option("--no-force-isolation", "lift the forced tier")
    .action(async (id: string, opts: KeysUpdateOptions, cmd: Command) =>
      setExit(await keysUpdate({ ...globals(cmd), ...opts, id })),
    );
}
