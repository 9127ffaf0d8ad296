/** What sessions take and give: options, results and the hooks into the rest of the service. */
import type {
  ArtifactCandidate,
  ArtifactEntry,
  ArtifactLimits,
  Collected,
  RejectedArtifact,
} from "../artifacts/collect.js";
import type { RequestLimits } from "../executions/limits.js";
import type { EgressPolicy } from "../network/policy.js";
import type { OutputChunk, SandboxNetwork } from "../sandbox/types.js";
import type { ContextLanguage } from "./schemas.js";

export interface SessionInfo {
  id: string;
  userId: string;
  status: "running" | "ended";
  createdAt: string;
  expiresAt: string;
  lastUsedAt: string;
  idleTimeoutSeconds: number;
  /** Default language of `run` (the code context). */
  language: ContextLanguage;
  /** Hosts the session may reach through the egress proxy; empty = no network. */
  network: string[];
  limits: { memoryMb: number; cpuPercent: number; diskMb: number; pids: number };
  metadata: Record<string, string>;
}

export interface CreateSessionOptions {
  language?: string | undefined;
  /** Egress for the whole session, already checked against the server's and key's policy. */
  network?: EgressPolicy | null | undefined;
  timeout?: number | undefined;
  idleTimeout?: number | undefined;
  limits?: RequestLimits | undefined;
  metadata?: Record<string, string> | undefined;
}

export interface CommandOptions {
  command: string[] | string;
  cwd?: string | undefined;
  env?: Record<string, string> | undefined;
  stdin?: string | undefined;
  timeout?: number | undefined;
  onOutput?: ((chunk: OutputChunk) => void) | undefined;
  /** Aborting stops the command (its whole process group); the session goes on. */
  signal?: AbortSignal | undefined;
}

export interface CommandResult {
  status: "completed" | "failed" | "timeout" | "output_limit";
  success: boolean;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  durationMs: number;
  artifacts: ArtifactEntry[];
  rejectedArtifacts: RejectedArtifact[];
}

export interface RunCellOptions {
  code: string;
  language?: string | undefined;
  timeout?: number | undefined;
  onOutput?: ((chunk: OutputChunk) => void) | undefined;
  /** Aborting interrupts the cell (KeyboardInterrupt); the context survives. */
  signal?: AbortSignal | undefined;
}

/** A rich output: a MIME bundle, e.g. {"text/plain": "42", "image/png": "<base64>"}. */
export interface RichResult {
  data: Record<string, string>;
  isMainResult: boolean;
}

export interface CellResult {
  status: "completed" | "failed" | "timeout";
  success: boolean;
  stdout: string;
  stderr: string;
  results: RichResult[];
  error: { name: string; value: string; traceback: string } | null;
  /** Output beyond the session's limits.outputBytes was dropped (per stream). */
  truncated: boolean;
  durationMs: number;
  artifacts: ArtifactEntry[];
  rejectedArtifacts: RejectedArtifact[];
}

export interface FileEntry {
  name: string;
  type: string;
  size: number;
  mtime: string | null;
}

/** What the manager needs from the rest of the service. */
export interface SessionHooks {
  audit(e: {
    userId: string;
    level: "info" | "warn";
    event: string;
    message: string;
    data?: Record<string, unknown>;
  }): void;
  /** Egress with per-connection audit and metrics. */
  egress?(policy: EgressPolicy, owner: { userId: string; sessionId: string }): SandboxNetwork;
  /** Holds a session's memory in the host's budget while it lives; returns the release. */
  reserveMemory?(mb: number, what: string): () => void;
  /** Judges and stores what a call left under /workspace/output (artifacts). */
  artifacts?: {
    limits(): ArtifactLimits;
    keep(
      candidates: ArtifactCandidate[],
      owner: { ownerId: string; userId: string },
      urlOf: (name: string) => string,
    ): Promise<Collected>;
  };
}
