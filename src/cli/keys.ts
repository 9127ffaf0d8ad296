/** `warden keys create|list|revoke`: API keys in the data dir's store (works while serve runs). */
import { resolve } from "node:path";
import { WardenError } from "../errors.js";
import { createKey } from "../executions/new-key.js";
import { PolicyModeSchema, POLICY_MODES } from "../contract/policy.js";
import { SCOPES, ScopeSchema, type Scope } from "../store/keys.js";
import { databaseUrlOf, openStore } from "../store/open.js";
import type { KeyStore } from "../store/store.js";
import { createContext, type GlobalOptions } from "./context.js";
import { keyIsolationFlags } from "./isolation-flags.js";

/** The configured store: the data dir's SQLite, or the cluster's PostgreSQL. */
async function store(
  options: GlobalOptions,
): Promise<{ keys: KeyStore; close: () => Promise<void> }> {
  const { config } = createContext(options);
  const opened = await openStore({
    dataDir: resolve(config.dataDir),
    databaseUrl: databaseUrlOf(config),
    applicationName: "warden keys",
  });
  return { keys: opened.keys, close: () => opened.close() };
}

/** The flags of `warden keys create`. */
export interface KeysCreateOptions {
  name: string;
  scopes: string;
  user?: string;
  allowNet?: string;
  policy?: string;
  /** `--isolation gvisor`: the key's default tier. */
  isolation?: string;
  /** `--force-isolation`: the key's runs can never leave its tier. */
  forceIsolation?: boolean;
  json?: boolean;
}

export async function keysCreate(options: GlobalOptions & KeysCreateOptions): Promise<number> {
  const scopes = options.scopes
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const scope of scopes)
    if (!ScopeSchema.safeParse(scope).success)
      throw new WardenError(
        "INVALID_REQUEST",
        `--scopes: unknown scope "${scope}" (one of ${SCOPES.join(", ")})`,
      );
  const policy = options.policy === undefined ? null : PolicyModeSchema.safeParse(options.policy);
  if (policy && !policy.success)
    throw new WardenError(
      "INVALID_REQUEST",
      `--policy: unknown mode "${options.policy}" (one of ${POLICY_MODES.join(", ")})`,
    );
  const isolation = keyIsolationFlags(options, false);
  const { config } = createContext(options);
  const networkAllow = options.allowNet
    ?.split(",")
    .map((h) => h.trim())
    .filter(Boolean);
  const { keys, close } = await store(options);
  try {
    const { key, token } = await createKey(keys, config.network, {
      name: options.name,
      scopes: scopes as Scope[],
      userId: options.user,
      networkAllow,
      policy: policy?.data,
      ...isolation,
    });
    if (options.json) process.stdout.write(`${JSON.stringify({ ...key, token })}\n`);
    else process.stdout.write(`${token}\n`);
    process.stderr.write(
      `created ${key.id} (user ${key.userId}, scopes ${key.scopes.join(",")}); the key above is shown once\n`,
    );
    return 0;
  } finally {
    await close();
  }
}

export async function keysList(options: GlobalOptions & { json?: boolean }): Promise<number> {
  const { keys, close } = await store(options);
  try {
    const all = await keys.list();
    if (options.json) {
      process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
      return 0;
    }
    const rows = all.map((k) => [
      k.id,
      k.name,
      k.userId,
      k.scopes.join(","),
      k.policy ?? "-",
      `${k.isolationDefault ?? "-"}${k.isolationForced ? " (forced)" : ""}`,
      new Date(k.createdAt).toISOString(),
      k.revokedAt ? `revoked ${new Date(k.revokedAt).toISOString()}` : "active",
    ]);
    const header = ["ID", "NAME", "USER", "SCOPES", "POLICY", "ISOLATION", "CREATED", "STATE"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const row of [header, ...rows])
      process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join("  ")}\n`);
    return 0;
  } finally {
    await close();
  }
}

export async function keysRevoke(options: GlobalOptions & { id: string }): Promise<number> {
  const { keys, close } = await store(options);
  try {
    if (!(await keys.revoke(options.id)))
      throw new WardenError("NOT_FOUND", `no active key ${options.id}`);
    process.stderr.write(`revoked ${options.id}\n`);
    return 0;
  } finally {
    await close();
  }
}
