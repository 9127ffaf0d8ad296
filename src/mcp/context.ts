/**
 * What every MCP tool gets: the core services, the acting user and their
 * scopes; and the shape of a tool definition.
 */
import type { KeyIsolation } from "../executions/isolation.js";
import type { CallToolResult, ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import type { z } from "zod";
import type { Logger } from "../audit/logger.js";
import type { Config } from "../config/schema.js";
import type { ExecutionFrontend } from "../executions/frontend.js";
import type { Analyzer } from "../policy/analyzer.js";
import type { PolicyMode } from "../contract/policy.js";
import type { RuntimeRegistry } from "../runtimes/registry.js";
import type { SessionManager } from "../sessions/manager.js";
import type { Scope } from "../store/keys.js";
import type { ToolExtra } from "./results.js";

export interface McpServerOptions {
  service: ExecutionFrontend;
  sessions: SessionManager;
  registry: RuntimeRegistry;
  config: Config;
  logger: Logger;
  /** Static analysis: run_code applies the same policy as POST /v1/executions. */
  analyzer: Analyzer;
  /**
   * The key's static-analysis mode; absent or null = the server's
   * (config.policy.mode), as for the local stdio user.
   */
  policy?: PolicyMode | null | undefined;
  /** Every call acts as this user: its sandboxes, its limits, its audit trail. */
  userId: string;
  /** The caller's key scopes; absent = every scope (the local stdio user). */
  scopes?: readonly Scope[] | undefined;
  /** The caller's key, for execution records. */
  keyId?: string | undefined;
  /** The key's own egress allowlist (narrows the server's). */
  networkAllow?: string[] | null | undefined;
  /** The key's isolation tier settings; absent = none (the server's sandbox.isolation). */
  isolation?: KeyIsolation | null | undefined;
  /**
   * Base of the service's URLs (preview links), e.g. `http://127.0.0.1:8080`;
   * absent when no HTTP service serves this client's sandboxes (stdio).
   */
  publicUrl?: string | undefined;
}

/** One tool: its schemas, hints, the scope it needs, and what it does. */
export interface ToolDefinition<
  I extends z.ZodObject = z.ZodObject,
  O extends z.ZodObject = z.ZodObject,
> {
  name: string;
  title: string;
  description: string;
  /** Key scope the call needs (`admin` implies all); `any` = any valid key. */
  scope: Scope | "any";
  input: I;
  output: O;
  annotations: ToolAnnotations;
  run(args: z.infer<I>, extra: ToolExtra): Promise<CallToolResult>;
}

/** Keeps a tool's input type tied to its schema. */
export function defineTool<I extends z.ZodObject, O extends z.ZodObject>(
  tool: ToolDefinition<I, O>,
): ToolDefinition {
  return tool;
}
