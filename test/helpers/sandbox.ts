/**
 * Shared fixtures for tests that run real sandboxes: one host per test file,
 * small limits, and `expectNothingLeft`, which checks a box left no process,
 * cgroup, mount, directory or uid lease behind.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import type { ExecutionResult } from "../../src/contract/result.js";
import { executeCode, type ExecuteRequest } from "../../src/runtimes/execute.js";
import { RuntimeRegistry } from "../../src/runtimes/registry.js";
import { SandboxHost } from "../../src/sandbox/host.js";
import type { SandboxLimits } from "../../src/sandbox/types.js";
import type { Isolation } from "../../src/contract/isolation.js";
import {
  cgroupsInEveryHierarchy,
  runscContainersOf,
  runscFilesOf,
  runscProcessesOf,
} from "./gvisor-leftovers.js";

export const config: Config = loadConfig({ env: {} });
export const registry = new RuntimeRegistry(config.sandbox.searchPath);

let hostPromise: Promise<SandboxHost> | undefined;
/** The file's host; its warm pool is off (test/attacks/pool.test.ts runs one of its own). */
export function testHost(): Promise<SandboxHost> {
  hostPromise ??= SandboxHost.open({
    config: { ...config.sandbox, pool: { ...config.sandbox.pool, enabled: false } },
    runDir: config.runDir,
    privateFiles: registry.privateFiles(),
  });
  return hostPromise;
}

export function limits(overrides: Partial<SandboxLimits> = {}): SandboxLimits {
  return {
    timeoutMs: 20_000,
    killGraceMs: 500,
    memoryMb: 256,
    cpuPercent: 100,
    diskMb: 64,
    pids: 64,
    outputBytes: 1 << 20,
    openFiles: 256,
    ...overrides,
  };
}

export interface RunCodeOptions extends Partial<
  Omit<ExecuteRequest, "language" | "files" | "limits">
> {
  limits?: Partial<SandboxLimits>;
  files?: ExecuteRequest["files"];
  /** The tier to run in (TIERS). @default "namespaces" */
  isolation?: Isolation | undefined;
}

/** Runs code, then checks the box left nothing behind. */
export async function runCode(
  language: string,
  code: string,
  options: RunCodeOptions = {},
): Promise<ExecutionResult & { box: { id: string; uid: number } }> {
  const host = await testHost();
  let box: { id: string; uid: number } | undefined;
  const def = registry.lookup(language);
  if (!def) throw new Error(`unknown language ${language}`);
  const result = await executeCode(host, registry, {
    ...options,
    language,
    files: options.files ?? [{ path: def.fileName, content: code }],
    limits: limits(options.limits),
    onBox: (b) => (box = b),
  });
  if (!box) throw new Error("no box reported");
  await expectNothingLeft(host, box);
  return { ...result, box };
}

/** Live processes whose real uid is `uid` (or passes the test). */
export function processesOfUid(uid: number | ((uid: number) => boolean)): number[] {
  const matches = typeof uid === "number" ? (u: number) => u === uid : uid;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, "utf8");
      if (matches(Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]))) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/** Every cgroup directory Warden may have made for `boxId`, on v1 or v2. */
export function cgroupDirsOf(host: SandboxHost, boxId: string): string[] {
  const layout = host.cgroupLayout;
  const roots =
    layout.mode === "v2" ? [layout.unifiedMount!] : [...new Set(Object.values(layout.v1Mounts))];
  const found: string[] = [];
  for (const root of roots) {
    const parent = join(root, host.cgroupParent);
    if (!existsSync(parent)) continue;
    for (const name of readdirSync(parent))
      if (name.startsWith(boxId)) found.push(join(parent, name));
  }
  return found;
}

/**
 * The launcher's two keep-warm cgroups (src/sandbox/host.ts), a live Warden's
 * own: not a sandbox's. Tests that look for leftovers of a running server skip them.
 */
export const KEEP_WARM_CGROUP = /-keepwarm[ab]$/m;

/** Host processes whose command line names the box (its helpers, which run as root). */
export function helpersOf(boxId: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(boxId)) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/**
 * Once the host's teardown (which runs after results are returned) is done,
 * the box has left no process, cgroup, mount, directory or uid lease.
 */
export async function expectNothingLeft(
  host: SandboxHost,
  box: { id: string; uid: number },
): Promise<void> {
  await host.settled();
  expect(cgroupDirsOf(host, box.id), "cgroups of the box").toEqual([]);
  const mounts = readFileSync("/proc/self/mountinfo", "utf8");
  expect(mounts.includes(box.id), "mounts of the box").toBe(false);
  // The workspace lives in the mount namespace of the box's first helper: gone with it.
  expect(helpersOf(box.id), "helpers holding the box's workspace").toEqual([]);
  expect(existsSync(join(host.runDir.boxes, box.id)), "workspace dir of the box").toBe(false);
  // gVisor's own leftovers (DESIGN-18 §3): none can exist for a namespaces box.
  expect(runscProcessesOf(box.id), "runsc processes naming the box").toEqual([]);
  expect(
    runscContainersOf(host, config.sandbox.gvisor.runscPath, box.id),
    "runsc list entries of the box",
  ).toEqual([]);
  expect(runscFilesOf(host, box.id), "runsc bundle and state files of the box").toEqual([]);
  expect(
    cgroupsInEveryHierarchy(host.cgroupParent, box.id),
    "cgroups of the box in any hierarchy",
  ).toEqual([]);
  // Test files run in parallel and share the uid range: once released, the uid may
  // already belong to another box. Its processes and lease are then not this box's.
  const lease = join(host.runDir.uids, String(box.uid));
  const holder = existsSync(lease) ? readFileSync(lease, "utf8").trim() : null;
  if (holder !== null && holder !== box.id) return;
  expect(holder, "uid lease of the box").toBeNull();
  expect(processesOfUid(box.uid), "processes of the box uid").toEqual([]);
}

export function available(language: string): boolean {
  try {
    registry.resolve(language);
    return true;
  } catch {
    return false;
  }
}
