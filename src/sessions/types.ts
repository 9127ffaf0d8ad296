/** What sessions take and give: options, results and the hooks into the rest of the service. */
import type { ArtifactCandidate, ArtifactLimits, Collected } from "../artifacts/collect.js";
import type { RequestLimits } from "../executions/limits.js";
import type { EgressPolicy } from "../network/policy.js";
import type { Isolation } from "../contract/isolation.js";
import type { KeyIsolation } from "../executions/isolation.js";
import type { OutputChunk, SandboxNetwork } from "../sandbox/types.js";
import type { z } from "zod";
import type { SnapshotStore } from "./snapshots.js";
import type {
  CellResultSchema,
  CommandResultSchema,
  RichResultSchema,
  SessionSchema,
} from "../contract/session.js";

/** A session as every interface shows it (see SessionSchema). */
export type SessionInfo = z.infer<typeof SessionSchema>;

export interface CreateSessionOptions {
  language?: string | undefined;
  /** Egress for the whole session, already checked against the server's and key's policy. */
  network?: EgressPolicy | null | undefined;
  timeout?: number | undefined;
  idleTimeout?: number | undefined;
  limits?: RequestLimits | undefined;
  metadata?: Record<string, string> | undefined;
  /** A prebuilt environment to mount (GET /v1/environments); absent = the host's packages. */
  environment?: string | undefined;
  /** A snapshot of the caller's to start from: its workspace is restored before the session starts. */
  snapshot?: string | undefined;
  /**
   * Variables every command, background command and code context of the
   * session starts with (E2B's envVars); a call's own env goes on top.
   */
  env?: Record<string, string> | undefined;
  /** The tier the request asked for; resolved with `keyIsolation` and sandbox.isolation. */
  isolation?: Isolation | undefined;
  /** The creating key's tier settings (executions/isolation.ts): a forced key wins. */
  keyIsolation?: KeyIsolation | null | undefined;
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

/** A foreground command's result (see CommandResultSchema). */
export type CommandResult = z.infer<typeof CommandResultSchema>;

export interface RunCellOptions {
  code: string;
  language?: string | undefined;
  timeout?: number | undefined;
  onOutput?: ((chunk: OutputChunk) => void) | undefined;
  /** Aborting interrupts the cell (KeyboardInterrupt); the context survives. */
  signal?: AbortSignal | undefined;
  /** A code context by id (named, or a default one: python, javascript, bash); its language wins. */
  context?: string | undefined;
  /** Environment variables for this cell only (set around it in the kernel, then restored). */
  env?: Record<string, string> | undefined;
  /** Called as the cell starts, with the context's count of cells run (this one included). */
  onStart?: ((executionCount: number) => void) | undefined;
}

/** A rich output: a MIME bundle, e.g. {"text/plain": "42", "image/png": "<base64>"}. */
export type RichResult = z.infer<typeof RichResultSchema>;

/** A cell's result (see CellResultSchema). */
export type CellResult = z.infer<typeof CellResultSchema>;

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
  /** Where snapshots are kept (absent: sessions cannot be snapshotted, and pauses end unsaved). */
  snapshots?: SnapshotStore;
  /** Judges and stores what a call left under /workspace/output (artifacts), with their URLs. */
  artifacts?: {
    limits(): ArtifactLimits;
    keep(
      candidates: ArtifactCandidate[],
      owner: { ownerId: string; userId: string },
    ): Promise<Collected>;
  };
  /**
   * Cluster: where API nodes look up which worker holds a session. Written
   * before a create answers (so the next call can be routed) and when a
   * session ends. Absent on a single node.
   */
  /** Quotas per user and key (src/usage/quotas.ts), checked before a session starts. */
  quotas?: {
    admit(actor: { userId: string; keyId: string | null }, kind: "session"): Promise<unknown>;
  };
  /** Usage accounting of live sessions (src/usage/session-usage.ts). */
  usage?: {
    started(s: {
      id: string;
      userId: string;
      keyId: string | null;
      sandbox: { usage(): Promise<{ memoryBytes: number; cpuTimeMs: number }> };
    }): void;
    ended(id: string): Promise<void>;
  };
  registry?: {
    workerId: string;
    register(row: {
      id: string;
      userId: string;
      keyId: string | null;
      workerId: string;
      language: string | null;
      createdAt: number;
    }): Promise<void>;
    ended(id: string, reason: string, at?: number): Promise<void>;
  };
}
