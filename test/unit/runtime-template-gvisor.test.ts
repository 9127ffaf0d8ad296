/**
 * A gvisor pool template's key names the probe's platform: built while the
 * probe is still running, it waits for the answer, so a box prewarmed early
 * and a run that comes later share one key (an early key ended `|none` and
 * its boxes were never taken).
 */
import { describe, expect, it } from "vitest";
import { runtimeTemplate } from "../../src/runtimes/warm.js";
import type { ResolvedRuntime } from "../../src/runtimes/registry.js";
import type { SandboxLimits } from "../../src/sandbox/types.js";

const runtime = {
  definition: { language: "ruby", run: ["/usr/bin/ruby", "{file}"] },
  tools: {},
  privateMounts: [],
} as unknown as ResolvedRuntime;
const limits = { diskMb: 8, memoryMb: 128, pids: 64, openFiles: 256 } as SandboxLimits;

/** A host whose probe answers `ptrace` once `answer()` is called. */
function probingHost() {
  let platform: string | null = null;
  let answer!: () => void;
  const probe = new Promise<void>((resolve) => (answer = resolve)).then(() => {
    platform = "ptrace";
    return { available: true, version: "v", platform, reason: null, platforms: {} };
  });
  let asked = 0;
  return {
    host: {
      gvisor: () => {
        asked++;
        return probe;
      },
      get gvisorPlatform() {
        return platform;
      },
      privateFile: (name: string) => `/run/warden/lib/${name}`,
    },
    answer,
    asked: () => asked,
  };
}

describe("gvisor pool template keys", () => {
  it("wait for the probe, so an early template matches a later run's", async () => {
    const p = probingHost();
    const early = runtimeTemplate(p.host, runtime, limits, undefined, "gvisor");
    p.answer();
    const late = await runtimeTemplate(p.host, runtime, limits, undefined, "gvisor");
    expect((await early).key).toBe("gvisor|ruby|8|128|64|256|ptrace");
    expect(late.key).toBe((await early).key);
  });

  it("a namespaces template never asks for the probe", async () => {
    const p = probingHost();
    expect((await runtimeTemplate(p.host, runtime, limits)).key).toBe("ruby|8|128|64|256");
    expect(p.asked()).toBe(0);
  });
});
