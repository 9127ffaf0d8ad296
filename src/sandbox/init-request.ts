/**
 * The run request Warden writes to warden-init once a sandbox is up (and the
 * warm stubs read the same bytes): NUL-terminated strings
 * "W1", cwd, rlimit count, "name=value"..., argc, argv..., envc, "KEY=value"....
 * Strings cannot hold NUL, so none of these may (argv and env never can).
 */
import { WardenError } from "../errors.js";

export interface InitRequest {
  cwd: string;
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  rlimits: Readonly<Record<string, number>>;
}

/** warden-init refuses more (native/warden-init.c, MAX_REQUEST and MAX_ITEMS). */
const MAX_REQUEST_BYTES = 4 << 20;
const MAX_ITEMS = 8192;

export function encodeInitRequest(r: InitRequest): Buffer {
  const env = Object.entries(r.env).map(([k, v]) => `${k}=${v}`);
  const rlimits = Object.entries(r.rlimits).map(([k, v]) => `${k}=${v}`);
  if (r.argv.length === 0 || r.argv.length > MAX_ITEMS || env.length > MAX_ITEMS)
    throw new WardenError("INVALID_REQUEST", `args: at most ${MAX_ITEMS} arguments and variables`);
  const parts = [
    "W1",
    r.cwd,
    String(rlimits.length),
    ...rlimits,
    String(r.argv.length),
    ...r.argv,
    String(env.length),
    ...env,
  ];
  if (parts.some((p) => p.includes("\0")))
    throw new WardenError("INVALID_REQUEST", "args and env must not contain NUL");
  const bytes = Buffer.from(parts.join("\0") + "\0");
  if (bytes.length > MAX_REQUEST_BYTES)
    throw new WardenError(
      "INVALID_REQUEST",
      `args and env: at most ${MAX_REQUEST_BYTES} bytes together`,
    );
  return bytes;
}
