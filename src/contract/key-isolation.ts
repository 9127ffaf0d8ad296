/**
 * A key's isolation settings (`warden keys create --isolation gvisor
 * [--force-isolation]`), shared by the keys store and the run paths that
 * resolve a tier (src/executions/isolation.ts).
 */
import type { Isolation } from "./isolation.js";
import { WardenError } from "../errors.js";

export interface KeyIsolation {
  /** The tier the key's runs get when the request names none; null = the server's. */
  isolationDefault?: Isolation | null | undefined;
  /** The key's runs are always in its default tier (only gvisor may be forced). */
  isolationForced?: boolean | undefined;
}

/** A key's settings checked when made or changed: forcing needs a gvisor default. */
export function checkKeyIsolation(key: KeyIsolation): void {
  if (key.isolationForced && key.isolationDefault !== "gvisor")
    throw new WardenError(
      "INVALID_REQUEST",
      "isolationForced: only a key whose isolationDefault is gvisor can be forced",
    );
}
