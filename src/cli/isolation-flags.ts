/** The `--isolation` flags of `warden run`, `exec`, `bench` and `keys create|update`, parsed once. */
import { IsolationSchema, type Isolation } from "../contract/isolation.js";
import { WardenError } from "../errors.js";

const TIERS = IsolationSchema.options.join(", ");

/** `--isolation <tier>`: a tier name, or undefined when the flag is absent. */
export function parseIsolationFlag(value: string | undefined): Isolation | undefined {
  if (value === undefined) return undefined;
  const parsed = IsolationSchema.safeParse(value);
  if (!parsed.success)
    throw new WardenError(
      "INVALID_REQUEST",
      `--isolation: unknown tier "${value}" (one of ${TIERS})`,
    );
  return parsed.data;
}

/**
 * A key's flags: `--isolation <tier>` (on update, `server` clears it) and
 * `--force-isolation` / `--no-force-isolation`. Only the fields given are set.
 */
export function keyIsolationFlags(
  options: { isolation?: string | undefined; forceIsolation?: boolean | undefined },
  allowServer: boolean,
): { isolationDefault?: Isolation | null; isolationForced?: boolean } {
  const out: { isolationDefault?: Isolation | null; isolationForced?: boolean } = {};
  if (options.isolation !== undefined)
    out.isolationDefault =
      allowServer && options.isolation === "server" ? null : parseIsolationFlag(options.isolation)!;
  if (options.forceIsolation !== undefined) out.isolationForced = options.forceIsolation;
  return out;
}
