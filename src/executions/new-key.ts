/**
 * Making an API key, for `warden keys create` and `POST /api/sandbox/keys`
 * alike: the key's egress list must lie within the server's, checked before
 * the key exists, so a key that could never be used is never made.
 */
import type { Config } from "../config/schema.js";
import { resolveEgress } from "../network/policy.js";
import type { ApiKey, NewKey } from "../store/keys.js";
import type { KeyPatch, KeyStore } from "../store/store.js";

export function createKey(
  keys: KeyStore,
  network: Config["network"],
  input: NewKey,
): Promise<{ key: ApiKey; token: string }> {
  const networkAllow = input.networkAllow?.length ? input.networkAllow : null;
  if (networkAllow) resolveEgress({ allow: networkAllow }, network);
  return keys.create({
    name: input.name,
    userId: input.userId ?? input.name,
    scopes: input.scopes,
    networkAllow,
    policy: input.policy ?? null,
    isolationDefault: input.isolationDefault ?? null,
    isolationForced: input.isolationForced ?? false,
  });
}

/** Changing a key: a new egress list is checked against the server's, as at creation. */
export function updateKey(keys: KeyStore, network: Config["network"], id: string, patch: KeyPatch) {
  const networkAllow =
    patch.networkAllow === undefined
      ? undefined
      : patch.networkAllow?.length
        ? patch.networkAllow
        : null;
  if (networkAllow) resolveEgress({ allow: networkAllow }, network);
  return keys.update(id, { ...patch, networkAllow });
}
