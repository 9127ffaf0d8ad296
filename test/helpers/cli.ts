/** Runs a command as a user would, for tests of the `warden` CLI: real process, real exit code. */
import { spawn } from "node:child_process";
import { join } from "node:path";

export const root = join(import.meta.dirname, "..", "..");
export const bin = join(root, "bin", "warden.js");

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  env?: Record<string, string>;
  input?: string;
  cwd?: string;
}

export function run(command: string, args: string[], options: CliRunOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
    // Start from no admin token and no data dir unless the test names one.
    delete env.WARDEN_ADMIN_TOKEN;
    if (!options.env?.WARDEN_DATA_DIR) delete env.WARDEN_DATA_DIR;
    const child = spawn(command, args, { cwd: options.cwd ?? root, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

/** `warden ARGS...` from this checkout's bin. */
export function warden(args: string[], options?: CliRunOptions): Promise<CliRun> {
  return run(process.execPath, [bin, ...args], options);
}
