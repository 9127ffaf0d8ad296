/** `warden run FILE|-`: one program, on this machine, behind full isolation. */
import { readFile } from "node:fs/promises";
import { basename, extname, resolve } from "node:path";
import { constants } from "node:os";
import { resolveLimits, type RequestLimits } from "../executions/limits.js";
import type { EgressEvent } from "../network/events.js";
import { resolveEgress } from "../network/policy.js";
import { WardenError } from "../errors.js";
import type { ExecutionResult } from "../contract/result.js";
import { executeCode } from "../runtimes/execute.js";
import { EnvironmentStore } from "../environments/store.js";
import { createContext, openHost, type GlobalOptions } from "./context.js";
import { judgeCode } from "../judging/judge.js";
import { cliJudge, testsTable, type TestsOptions } from "./run-tests.js";
import { parseIsolationFlag } from "./isolation-flags.js";
import { checkTierAvailable } from "../executions/isolation.js";

export interface RunOptions extends GlobalOptions, TestsOptions {
  language?: string;
  stdin?: string;
  timeout?: string;
  memory?: string;
  cpu?: string;
  disk?: string;
  allowNet?: string;
  environment?: string;
  /** `--isolation gvisor`: the tier (default sandbox.isolation). */
  isolation?: string;
  json?: boolean;
}

/** Exit codes of `warden run` besides the program's own. */
export const EXIT = {
  timeout: 124,
  killed: 137,
  wardenError: 125,
  usage: 2,
  compileFailed: 1,
} as const;

function number(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new WardenError("INVALID_REQUEST", `--${flag}: must be a positive number, got "${raw}"`);
  return value;
}

/** Summary rows named in one line; the rest are a count. */
const SUMMARY_ROWS = 3;

/**
 * The stderr line for an egress event: each early refusal by name and port;
 * past the first few, the proxy reports refusals in batches (events.ts), shown
 * as a count and the busiest hosts. Allowed connections print nothing.
 */
export function egressNotice(e: EgressEvent): string | null {
  if (e.decision !== "denied") return null;
  if (e.protocol !== "summary") return `warden: egress to ${e.host}:${e.port} denied: ${e.reason}`;
  const rows = e.summary ?? [];
  const named = rows
    .slice(0, SUMMARY_ROWS)
    .map((r) => `${r.host} ×${r.count} (${r.reason})`)
    .join(", ");
  const others = rows.length > SUMMARY_ROWS ? `, and ${rows.length - SUMMARY_ROWS} more` : "";
  const attempts = e.count === 1 ? "attempt" : "attempts";
  return `warden: egress: ${e.count} more ${attempts} denied${named ? `: ${named}${others}` : ""}`;
}

/** Reads a file the user named; a missing or unreadable one is bad usage (exit 2), not Warden's fault. */
async function readUserFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
          ? "is a directory"
          : code === "EACCES"
            ? "permission denied"
            : "cannot be read";
    throw new WardenError("INVALID_REQUEST", `${flag}${path}: ${why}`);
  }
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/** The process exit code that stands for a result. */
export function exitCodeFor(result: ExecutionResult): number {
  switch (result.status) {
    case "completed":
      return 0;
    case "failed":
      if (result.exitCode !== null) return result.exitCode;
      if (result.signal)
        return 128 + ((constants.signals as Record<string, number>)[result.signal] ?? 0);
      return EXIT.compileFailed;
    case "timeout":
      return EXIT.timeout;
    case "killed":
    case "memory_limit":
    case "output_limit":
      return EXIT.killed;
    case "disk_limit":
      return result.exitCode && result.exitCode > 0 ? result.exitCode : 1;
    case "error":
    case "queued":
    case "running":
    case "rejected":
      return EXIT.wardenError;
  }
}

function notice(result: ExecutionResult): string | null {
  if (result.error)
    return `warden: ${result.status}: ${result.error.code}: ${result.error.message}`;
  if (result.status === "completed" || result.status === "failed") return null;
  return `warden: ${result.status.replace("_", " ")} (${result.metrics.executionTimeMs} ms)`;
}

export async function runCommand(
  file: string,
  args: string[],
  options: RunOptions,
): Promise<number> {
  const ctx = createContext(options);
  // The operator at the CLI may name hosts directly; a configured allowlist still bounds them.
  const hosts =
    options.allowNet
      ?.split(",")
      .map((h) => h.trim())
      .filter(Boolean) ?? [];
  const serverNetwork =
    ctx.config.network.allow.length > 0
      ? ctx.config.network
      : { ...ctx.config.network, allow: hosts };
  const egress = resolveEgress(hosts.length > 0 ? { allow: hosts } : undefined, serverNetwork);
  const fromStdin = file === "-";
  // Read first: a missing file is reported as such, before its extension is judged.
  const fileCode = fromStdin ? undefined : await readUserFile("", file);
  const definition = options.language
    ? ctx.registry.lookup(options.language)
    : fromStdin
      ? undefined
      : ctx.registry.lookupByExtension(extname(file));
  if (!definition) {
    throw new WardenError(
      "UNSUPPORTED_LANGUAGE",
      options.language
        ? `--language: "${options.language}" is not a known language`
        : `cannot tell the language of ${fromStdin ? "standard input" : file}: pass --language`,
    );
  }
  const code = fileCode ?? (await readStream(process.stdin));
  let stdin: string | undefined;
  if (options.stdin === "-") {
    if (fromStdin)
      throw new WardenError("INVALID_REQUEST", "--stdin -: standard input already holds the code");
    stdin = await readStream(process.stdin);
  } else if (options.stdin) stdin = await readUserFile("--stdin ", options.stdin);

  const requestLimits: RequestLimits = {};
  const memory = number("memory", options.memory);
  const cpu = number("cpu", options.cpu);
  const disk = number("disk", options.disk);
  if (memory !== undefined) requestLimits.memoryMb = Math.round(memory);
  if (cpu !== undefined) requestLimits.cpuPercent = cpu;
  if (disk !== undefined) requestLimits.diskMb = Math.round(disk);
  const limits = resolveLimits(ctx.config, {
    timeout: number("timeout", options.timeout),
    limits: requestLimits,
  });

  // Java wants the file named after its class; everything else keeps the user's name.
  const fileName =
    fromStdin || definition.language === "java" ? definition.fileName : basename(file);
  const environments = new EnvironmentStore(resolve(ctx.config.dataDir));
  const environment = environments.resolve(options.environment, "--environment");
  const release = environment
    ? await environments.acquire(environment.name, "--environment")
    : async () => undefined;
  const judge = options.tests
    ? await cliJudge(
        options,
        ctx.config,
        { timeout: number("timeout", options.timeout), limits: requestLimits, args },
        (path) => ctx.registry.lookupByExtension(extname(path))?.language,
      )
    : undefined;
  const isolation = parseIsolationFlag(options.isolation) ?? ctx.config.sandbox.isolation;
  const host = await openHost(ctx);
  try {
    checkTierAvailable(host, isolation);
  } catch (error) {
    await host.close();
    await release();
    throw error;
  }
  const files = [{ path: fileName, content: code }];
  const network = egress
    ? {
        policy: egress,
        onEvent: (e: EgressEvent) => {
          const line = options.json ? null : egressNotice(e);
          if (line) process.stderr.write(`${line}\n`);
        },
      }
    : undefined;
  const run = judge
    ? judgeCode(host, ctx.registry, {
        language: definition.language,
        files,
        limits,
        environment,
        network,
        judge,
        isolation,
        maxCompiledBytes: ctx.config.judging.maxCompiledMb * 1024 * 1024,
        caseOutputBytes: ctx.config.judging.caseOutputBytes,
      })
    : executeCode(host, ctx.registry, {
        language: definition.language,
        files,
        stdin,
        args,
        limits,
        environment,
        network,
        isolation,
        onOutput: options.json
          ? undefined
          : (chunk) =>
              (chunk.stream === "stdout" ? process.stdout : process.stderr).write(chunk.data),
      });
  const result = await run.finally(async () => {
    await host.close();
    await release();
  });
  if (result.tests && !options.json) {
    if (result.compile && result.compile.status !== "completed")
      process.stderr.write(result.compile.stdout + result.compile.stderr);
    process.stdout.write(testsTable(result));
    if (result.error)
      process.stderr.write(`warden: ${result.error.code}: ${result.error.message}\n`);
  }
  if (result.tests) {
    if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    // All accepted or not; a Warden fault keeps its own code.
    if (result.status === "error") return EXIT.wardenError;
    return result.tests.verdict === "accepted" ? 0 : EXIT.compileFailed;
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    if (result.compile && result.compile.status !== "completed") {
      process.stderr.write(result.compile.stdout);
      process.stderr.write(result.compile.stderr);
    }
    const line = notice(result);
    if (line) process.stderr.write(`${line}\n`);
  }
  return exitCodeFor(result);
}
