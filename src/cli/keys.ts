/** `warden keys create|list|revoke`: API keys in the data dir's store (works while serve runs). */
import { resolve } from "node:path";
import { WardenError } from "../errors.js";
import { createKey } from "../executions/new-key.js";
import { PolicyModeSchema, POLICY_MODES } from "../contract/policy.js";
import { openDatabase } from "../store/database.js";
import { KeyStore, SCOPES, ScopeSchema, type Scope } from "../store/keys.js";
import { createContext, type GlobalOptions } from "./context.js";

function store(options: GlobalOptions): { keys: KeyStore; close: () => void } {
  const { config } = createContext(options);
  const db = openDatabase(resolve(config.dataDir));
  return { keys: new KeyStore(db), close: () => db.close() };
}

/** The flags of `warden keys create`. */
export interface KeysCreateOptions {
  name: string;
  scopes: string;
  user?: string;
  allowNet?: string;
  policy?: string;
  json?: boolean;
}

export function keysCreate(options: GlobalOptions & KeysCreateOptions): number {
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
  const { config } = createContext(options);
  const networkAllow = options.allowNet
    ?.split(",")
    .map((h) => h.trim())
    .filter(Boolean);
  const { keys, close } = store(options);
  try {
    const { key, token } = createKey(keys, config.network, {
      name: options.name,
      scopes: scopes as Scope[],
      userId: options.user,
      networkAllow,
      policy: policy?.data,
    });
    if (options.json) process.stdout.write(`${JSON.stringify({ ...key, token })}\n`);
    else process.stdout.write(`${token}\n`);
    process.stderr.write(
      `created ${key.id} (user ${key.userId}, scopes ${key.scopes.join(",")}); the key above is shown once\n`,
    );
    return 0;
  } finally {
    close();
  }
}

export function keysList(options: GlobalOptions & { json?: boolean }): number {
  const { keys, close } = store(options);
  try {
    const all = keys.list();
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
      new Date(k.createdAt).toISOString(),
      k.revokedAt ? `revoked ${new Date(k.revokedAt).toISOString()}` : "active",
    ]);
    const header = ["ID", "NAME", "USER", "SCOPES", "POLICY", "CREATED", "STATE"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const row of [header, ...rows])
      process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join("  ")}\n`);
    return 0;
  } finally {
    close();
  }
}

export function keysRevoke(options: GlobalOptions & { id: string }): number {
  const { keys, close } = store(options);
  try {
    if (!keys.revoke(options.id)) throw new WardenError("NOT_FOUND", `no active key ${options.id}`);
    process.stderr.write(`revoked ${options.id}\n`);
    return 0;
  } finally {
    close();
  }
}
