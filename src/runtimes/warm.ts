/**
 * What the warm pool starts for a runtime: a template per runtime and the
 * limits fixed at start, and whether a given first run can take such a box.
 * A box of a runtime with a warm stub (Python, Node) runs the stub in place
 * of the program, started exactly as the program would be; any other box
 * waits in init for whatever its first run (a compile step, say) asks.
 */
import { isolatedKey, type PoolTemplate } from "../sandbox/pool.js";
import type { Isolation } from "../contract/isolation.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { ReadOnlyMount, SandboxEnvironment, SandboxLimits } from "../sandbox/types.js";
import { BASE_ENV } from "../sandbox/box.js";
import { expandTemplate, privateMountsFor, type ResolvedRuntime } from "./registry.js";

const STUBS = {
  python: { file: "warm.py", startup: /^(PYTHON|LC_|LANG|LD_|MALLOC_|GLIBC_)/ },
  node: { file: "warm.cjs", startup: /^(NODE_|UV_|LC_|LANG|LD_|OPENSSL_|SSL_|TZ$|ICU_)/ },
} as const;

const STUB_DIR = "/.warden/warm";

export interface RuntimeTemplate extends PoolTemplate {
  /** Whether a first run with this argv and environment can take a box of this template. */
  accepts(argv: readonly string[], env: Readonly<Record<string, string>>): boolean;
}

/**
 * `limits` are the first run's (a compile step's for compiled languages): the
 * ones fixed at start (disk, memory for /dev/shm and the stack, pids, open
 * files) are part of the key, so warden-exec sets the request's own rlimits
 * from the host. The CPU-time rlimit is not: a box starts without one and
 * init sets the request's before its program runs (a process may lower its
 * limits, never raise them); the host enforces CPU time on the cgroup anyway.
 *
 * A gvisor template waits for the tier's probe: its key names the platform,
 * and a key built before the probe answered ended `|none`, so its boxes were
 * never taken by a later run (keyed `|ptrace`) and sat in the pool.
 */
export async function runtimeTemplate(
  host: Pick<SandboxHost, "gvisor" | "gvisorPlatform" | "privateFile">,
  runtime: ResolvedRuntime,
  limits: SandboxLimits,
  environment?: SandboxEnvironment,
  isolation: Isolation = "namespaces",
): Promise<RuntimeTemplate> {
  if (isolation === "gvisor") await host.gvisor();
  const def = runtime.definition;
  const mounts: ReadOnlyMount[] = privateMountsFor(runtime, (name) => host.privateFile(name));
  // An environment's boxes are their own template: its tree is bound when the
  // box starts, and its variables are in the stub's start-up environment.
  const key = isolatedKey(
    [
      def.language,
      limits.diskMb,
      limits.memoryMb,
      limits.pids,
      limits.openFiles,
      ...(environment ? [`env=${environment.key}`] : []),
    ].join("|"),
    isolation,
    host.gvisorPlatform,
  );
  const base = { key, box: { diskMb: limits.diskMb, binds: environment?.binds, isolation } };
  const ceilings: SandboxLimits = { ...limits, cpuTimeMs: undefined };
  const stub = def.warm && !def.compile ? STUBS[def.warm] : undefined;
  if (!stub) return { ...base, launch: { limits: ceilings, mounts }, accepts: () => true };

  const stubPath = `${STUB_DIR}/${stub.file}`;
  const warm = expandTemplate(def.run, { ...runtime.tools, file: stubPath });
  // Warden's own variables for the environment start the stub, so a run
  // whose only start-up variables are these is served warm.
  const env = { ...def.env, ...environment?.env };
  const startupEnv = (e: Readonly<Record<string, string>>): string =>
    JSON.stringify(
      Object.entries(e)
        .filter(([k]) => stub.startup.test(k))
        .sort(([a], [b]) => (a < b ? -1 : 1)),
    );
  const ownStartup = startupEnv({ ...BASE_ENV, ...env });
  const prefix = warm.slice(0, -1);
  return {
    ...base,
    key: `${key}|warm`,
    launch: {
      limits: ceilings,
      mounts: [...mounts, { source: host.privateFile(stub.file), target: stubPath }],
      env,
      warm,
    },
    accepts: (argv, runEnv) =>
      argv.length > prefix.length &&
      prefix.every((a, i) => argv[i] === a) &&
      !argv[prefix.length]!.startsWith("-") &&
      startupEnv(runEnv) === ownStartup,
  };
}
