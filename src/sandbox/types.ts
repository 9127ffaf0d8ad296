/** The engine's contract: a `SandboxSpec` goes in, a `RunResult` comes out. */
import type { Readable } from "node:stream";
import type { EgressPolicy } from "../network/policy.js";
import type { Cgroup } from "./cgroups/cgroup.js";
import type { EgressEvent } from "../network/proxy.js";
import type { SandboxLimits } from "../contract/limits.js";
import type { RunStatus } from "../contract/result.js";
import type { Isolation } from "../contract/isolation.js";

export interface SandboxFile {
  /** Relative to /workspace; no `..`, no absolute paths. */
  path: string;
  content: string | Buffer;
  /** Permission bits. @default 0o644 */
  mode?: number;
}

/** A directory from the host made visible read-only inside the sandbox. */
export interface ReadOnlyMount {
  source: string;
  target: string;
}

/**
 * A prebuilt package set a run uses (src/environments): directories the box
 * binds read-only, and the variables that make their packages importable.
 */
export interface SandboxEnvironment {
  name: string;
  /** Tells builds apart (the warm pool's template key). */
  key: string;
  binds: ReadOnlyMount[];
  env: Record<string, string>;
}

export type OutputStream = "stdout" | "stderr";

/** Egress for one run: the policy and who hears about each connection. */
export interface SandboxNetwork {
  policy: EgressPolicy;
  onEvent?: ((event: EgressEvent) => void) | undefined;
}

export interface OutputChunk {
  stream: OutputStream;
  data: string;
}

/** One program to run inside a prepared box. */
export interface SandboxSpec {
  /** argv[0] must be an absolute path inside the sandbox. */
  argv: string[];
  /** Environment on top of the base one (PATH, HOME, LANG...). */
  env?: Record<string, string>;
  /** Written and closed; or a stream piped for the program's whole life. */
  stdin?: string | Buffer | Readable;
  /** Keep output in the result; off for long-lived programs that only stream it. @default true */
  retainOutput?: boolean;
  /** Working directory inside the sandbox. @default "/workspace" */
  cwd?: string;
  limits: SandboxLimits;
  /** Extra read-only directories (a runtime's toolchain). */
  mounts?: ReadOnlyMount[];
  /** Called for each piece of output, in order, while the program runs. */
  onOutput?: (chunk: OutputChunk) => void;
  /** Aborting kills the run; its status becomes `killed`. */
  signal?: AbortSignal;
  /** Told the run's cgroup once it exists, for live monitoring (sessions). */
  onCgroup?: ((cgroup: Cgroup) => void) | undefined;
  /** Egress through the proxy; absent means no network at all. */
  network?: SandboxNetwork | undefined;
}

/** The engine reports its outcomes in the result contract's vocabulary. */
export type { RunStatus, SandboxLimits };

export interface RunMetrics {
  /** From the moment the program was released to its exit. */
  wallTimeMs: number;
  /** User + system CPU of the whole cgroup. */
  cpuTimeMs: number;
  /** Peak memory of the whole cgroup (0 where the kernel does not track it). */
  peakMemoryBytes: number;
  oomKills: number;
  /** Bytes in use in the workspace tmpfs at the end (/workspace and /tmp together). */
  diskUsedBytes: number;
  stdoutBytes: number;
  stderrBytes: number;
  /** Bytes through the egress proxy, both ways. */
  networkBytes: number;
  /** Connections the egress proxy made for the run. */
  networkConnections: number;
  /** Memory in use integrated over the run (bytes × ms), sampled from the cgroup. */
  memoryByteMs: number;
  /** Highest use of the workspace tmpfs seen while it ran (bytes). */
  diskPeakBytes: number;
  /** gVisor tier: how the Sentry intercepts system calls (ptrace, systrap, kvm). */
  platform?: string;
}

export interface RunResult {
  status: RunStatus;
  exitCode: number | null;
  /** Signal name when the program died of a signal, e.g. "SIGKILL". */
  signal: string | null;
  stdout: string;
  stderr: string;
  truncated: { stdout: boolean; stderr: boolean };
  metrics: RunMetrics;
  /** Why `status` is `error` (Warden's own fault); never shown raw to API clients. */
  errorMessage?: string;
  /** Which box and host uid ran it, for audit and leak checks. */
  sandbox: { id: string; uid: number };
  /** The run took a sandbox the warm pool had started ahead. */
  warm: boolean;
  /** The tier that ran it. */
  isolation?: Isolation;
}
