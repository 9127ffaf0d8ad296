/**
 * Whether this host offers the gVisor tier, and on which platform: found by
 * trying, never by guessing (a /dev/kvm that opens can still hang, as in a
 * nested VM without vmx). `runsc --version`, `runsc flags`, then `/bin/true`
 * in a real bundle per candidate platform under probeTimeoutMs (through the
 * whole chain: helper, cgroup, control socket, init). The verdict is kept for
 * the doctor, /v1/runtimes and the error a gvisor request gets without it.
 */
import { open, readFile } from "node:fs/promises";
import type { GvisorConfig } from "../../config/gvisor-config.js";
import { runsc } from "./runsc-args.js";

export interface GvisorProbe {
  available: boolean;
  /** `runsc --version`'s first line's version, e.g. "0.0~20221219.0". */
  version: string | null;
  /** The platform runs use, when available. */
  platform: string | null;
  /** Why the tier is unavailable (null when it is). */
  reason: string | null;
  /** What became of each platform considered: "ok", or why not. */
  platforms: Record<string, string>;
}

export const PLATFORM_ORDER = ["kvm", "systrap", "ptrace"] as const;

/** "runsc version 0.0~20221219.0" → "0.0~20221219.0". */
export function parseRunscVersion(text: string): string | null {
  return /runsc version (\S+)/.exec(text)?.[1] ?? null;
}

/** The platforms `runsc flags` lists under -platform ("ptrace (default), kvm."). */
export function parsePlatforms(flags: string): string[] {
  const m = /platform to use:\s*([^\n]*)/.exec(flags);
  if (!m) return [];
  // "ptrace (default), kvm. (default "ptrace")": the list ends at the first period.
  return m[1]!
    .split(".")[0]!
    .replace(/\(default\)/g, "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => /^[a-z]+$/.test(p));
}

/** Whether `runsc flags` offers the flags Warden relies on. */
export function missingFlags(flags: string): string[] {
  return ["-host-uds", "-network", "-root", "-overlay2"].filter(
    (f) => !new RegExp(`^\\s*${f}\\b`, "m").test(flags),
  );
}

async function kvmUsable(): Promise<string | null> {
  const handle = await open("/dev/kvm", "r+").catch(() => null);
  if (!handle) return "/dev/kvm cannot be opened read-write";
  await handle.close();
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  // A nested guest without virtualisation extensions: runsc spins and never starts.
  if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo)) return "no vmx or svm in /proc/cpuinfo";
  return null;
}

/** Candidate platforms in order of preference, and why the others were left out. */
export async function candidatePlatforms(
  wanted: GvisorConfig["platform"],
  offered: readonly string[],
): Promise<{ candidates: string[]; skipped: Record<string, string> }> {
  const skipped: Record<string, string> = {};
  const candidates: string[] = [];
  const order = wanted === "auto" ? PLATFORM_ORDER : [wanted];
  for (const platform of order) {
    if (!offered.includes(platform)) {
      skipped[platform] = "not in this build";
      continue;
    }
    const kvm = platform === "kvm" ? await kvmUsable() : null;
    if (kvm) skipped[platform] = kvm;
    else candidates.push(platform);
  }
  return { candidates, skipped };
}

/**
 * Runs the probe. `tryPlatform` runs /bin/true in a real box on one platform
 * and resolves to null when it completed, else to why not.
 */
export async function probeGvisor(
  config: GvisorConfig,
  tryPlatform: (platform: string) => Promise<string | null>,
): Promise<GvisorProbe> {
  const verdict: GvisorProbe = {
    available: false,
    version: null,
    platform: null,
    reason: null,
    platforms: {},
  };
  if (config.enabled === "off") return { ...verdict, reason: "sandbox.gvisor.enabled is off" };
  const call = { runscPath: config.runscPath, globalArgs: [] };
  const version = await runsc(call, ["--version"], config.probeTimeoutMs);
  verdict.version = parseRunscVersion(version.stdout);
  if (version.code !== 0 || !verdict.version)
    return {
      ...verdict,
      reason: `${config.runscPath} --version failed: ${oneLine(version.stderr) || `status ${version.code}`}`,
    };
  const flags = await runsc(call, ["flags"], config.probeTimeoutMs);
  const flagText = flags.stdout + flags.stderr;
  const missing = missingFlags(flagText);
  if (missing.length > 0)
    return { ...verdict, reason: `runsc lacks ${missing.join(", ")} (too old)` };
  const { candidates, skipped } = await candidatePlatforms(
    config.platform,
    parsePlatforms(flagText),
  );
  verdict.platforms = { ...skipped };
  for (const platform of candidates) {
    const why = await tryPlatform(platform).catch((error: unknown) => (error as Error).message);
    verdict.platforms[platform] = why ?? "ok";
    if (why === null) return { ...verdict, available: true, platform };
  }
  const tried = Object.entries(verdict.platforms).map(([p, why]) => `${p}: ${why}`);
  return { ...verdict, reason: `no platform works (${tried.join("; ") || "none offered"})` };
}

/** The doctor's line: "available (runsc V, platform P; kvm: ...)" or why not. */
export function describeProbe(p: GvisorProbe): string {
  const others = Object.entries(p.platforms)
    .filter(([name]) => name !== p.platform)
    .map(([name, why]) => `${name}: ${why}`);
  if (!p.available) return `unavailable: ${p.reason ?? "not probed"}`;
  return `available (runsc ${p.version}, platform ${p.platform}${others.length ? `; ${others.join("; ")}` : ""})`;
}

function oneLine(text: string): string {
  return (text.trim().split("\n")[0] ?? "").replace(/[^\x20-\x7e]/g, "?").slice(0, 200);
}
