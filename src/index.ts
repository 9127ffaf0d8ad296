/** Warden as a library: the engine, the runtimes and the config, for in-process use. */
export { SandboxHost, type SandboxHostOptions } from "./sandbox/host.js";
export type { Box, BoxOptions } from "./sandbox/box.js";
export type {
  OutputChunk,
  RunResult,
  RunStatus,
  SandboxFile,
  SandboxLimits,
  SandboxSpec,
} from "./sandbox/types.js";
export { RuntimeRegistry, type RuntimeInfo } from "./runtimes/registry.js";
export { executeCode, type ExecuteRequest } from "./runtimes/execute.js";
export type { ExecutionResult, ExecutionStatus } from "./contract/result.js";
export { loadConfig, type LoadConfigOptions } from "./config/load.js";
export type { Config } from "./config/schema.js";
export { WardenError, ERROR_CODES, type ErrorCode, type ErrorInfo } from "./errors.js";
export { openWarden, type EmbeddedWarden, type OpenWardenOptions } from "./warden.js";
export {
  ExecutionService,
  type ExecuteOptions,
  type SystemMetrics,
  type UserMetrics,
} from "./executions/service.js";
export type { AuditEvent } from "./store/records.js";
export { buildServer } from "./http/server.js";
export { Analyzer, type PolicyVerdict } from "./policy/analyzer.js";
export type { AnalysisReport, Finding, PolicyMode, Severity } from "./contract/policy.js";
export { NotebookService, type NotebookRun, type Upload } from "./notebooks/service.js";
export type { Notebook } from "./notebooks/format.js";
