/**
 * The user class of the Prometheus usage counters: a configured mapping
 * (`usage.userClasses`, at most 50 classes) first, else the class of the
 * key's scopes (admin, delegate, user), `anonymous` without a key on the
 * Piston routes, `library` for in-process calls. Bounded label values: a
 * million users make five series, not a million.
 */
import type { UserClassifier } from "../executions/metrics.js";
import type { KeyStore } from "../store/store.js";

const CACHE_MAX = 1000;
const CACHE_TTL_MS = 60_000;

export function userClassifier(mapping: Record<string, string>, keys: KeyStore): UserClassifier {
  const cache = new Map<string, { at: number; cls: string }>();
  return async (userId, keyId) => {
    const mapped = mapping[userId];
    if (mapped) return mapped;
    if (!keyId) return userId === "anonymous" ? "anonymous" : "library";
    const hit = cache.get(keyId);
    if (hit && Date.now() - hit.at < CACHE_TTL_MS) return hit.cls;
    const key = await keys.get(keyId);
    const cls = !key
      ? "user"
      : key.scopes.includes("admin")
        ? "admin"
        : key.scopes.includes("delegate")
          ? "delegate"
          : "user";
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(keyId, { at: Date.now(), cls });
    return cls;
  };
}
