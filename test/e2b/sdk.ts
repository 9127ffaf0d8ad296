/**
 * Runs E2B SDK scripts the way a user would: a child `node` process whose
 * environment points E2B_API_URL and E2B_SANDBOX_URL at a Warden started by
 * the test, and E2B_API_KEY at one of its keys. The SDKs read their settings
 * from the environment each time they build a connection, so the script sees
 * nothing but those variables.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createKey, startServer, type TestServer } from "../helpers/server.js";

const root = join(import.meta.dirname, "..", "..");

export interface E2bWarden {
  server: TestServer;
  /** A key with the sessions scope, as E2B_API_KEY. */
  apiKey: string;
  /** The environment a script runs with. */
  env: Record<string, string>;
}

export async function startE2bWarden(config: Record<string, unknown> = {}): Promise<E2bWarden> {
  const server = await startServer({ config });
  const apiKey = await createKey(server, "e2b", "sessions,execute", "e2b-user");
  const base = `${server.url}/e2b`;
  return { server, apiKey, env: { E2B_API_URL: base, E2B_SANDBOX_URL: base, E2B_API_KEY: apiKey } };
}

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `source` as an ES module with the SDKs importable (from the project's
 * node_modules), bounded in time; its stdout is what the test reads.
 */
export function runScript(
  w: E2bWarden,
  source: string,
  options: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<ScriptResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--input-type=module", "-"], {
      cwd: root,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...w.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(source);
  });
}

/** The last line of a script's stdout, parsed as JSON (scripts print their findings there). */
export function lastJson<T = Record<string, unknown>>(r: ScriptResult): T {
  const lines = r.stdout.trim().split("\n");
  const last = lines[lines.length - 1] ?? "";
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`script printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}
