/** A small execution request for scheduler-level tests (no sandbox runs it). */
import type { ExecutionRequest } from "../../src/executions/execution.js";

export function smallRequest(
  userId: string,
  o: { memoryMb?: number; code?: string; retryOnFailure?: boolean } = {},
): ExecutionRequest {
  return {
    language: "python",
    files: [{ path: "main.py", content: o.code ?? "" }],
    limits: {
      timeoutMs: 1000,
      killGraceMs: 0,
      memoryMb: o.memoryMb ?? 100,
      cpuPercent: 10,
      diskMb: 1,
      pids: 8,
      outputBytes: 1024,
      openFiles: 16,
    },
    network: null,
    retryOnFailure: o.retryOnFailure ?? true,
    userId,
    source: "library",
  };
}
