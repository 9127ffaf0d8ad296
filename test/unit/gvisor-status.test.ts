/** The doctor's view of the gVisor tier: runsc's answers parsed, the one-line status, the age warning. */
import { describe, expect, it } from "vitest";
import { GvisorConfigSchema } from "../../src/config/gvisor-config.js";
import { gvisorChecks } from "../../src/cli/doctor-gvisor.js";
import {
  describeProbe,
  parsePlatforms,
  parseRunscVersion,
} from "../../src/sandbox/gvisor/probe.js";
import { buildDate, quickGvisorStatus, versionWarning } from "../../src/sandbox/gvisor/status.js";

const config = GvisorConfigSchema.parse({});

describe("runsc's answers", () => {
  it("reads the version and its build date", () => {
    expect(parseRunscVersion("runsc version 0.0~20221219.0\nspec: 1.0.2-dev\n")).toBe(
      "0.0~20221219.0",
    );
    expect(parseRunscVersion("nothing")).toBeNull();
    expect(buildDate("0.0~20221219.0")).toBe("2022-12-19");
    expect(buildDate("release-20240513.0")).toBe("2024-05-13");
    expect(buildDate("v1")).toBeNull();
  });

  it("reads the platforms of the 2022 Debian build and of a newer one", () => {
    const debian = `  -platform string
    \tspecifies which platform to use: ptrace (default), kvm. (default "ptrace")
  -platform_device_path string`;
    expect(parsePlatforms(debian)).toEqual(["ptrace", "kvm"]);
    const newer = `  -platform string
    \tspecifies which platform to use: systrap (default), ptrace, kvm. (default "systrap")`;
    expect(parsePlatforms(newer)).toEqual(["systrap", "ptrace", "kvm"]);
    expect(parsePlatforms("")).toEqual([]);
  });

  it("warns about builds from before June 2023 only", () => {
    expect(versionWarning("0.0~20221219.0")).toMatch(/2022-12-19: coreutils ls\/stat fail/);
    expect(versionWarning("release-20230605.0")).toBeNull();
    expect(versionWarning("unknown")).toBeNull();
  });
});

describe("the doctor's gvisor lines", () => {
  it("says what is available and why the other platforms are not", () => {
    const status = {
      available: true,
      version: "0.0~20221219.0",
      platform: "ptrace",
      reason: null,
      platforms: { kvm: "probe timed out", systrap: "not in this build", ptrace: "ok" },
    };
    expect(describeProbe(status)).toBe(
      "available (runsc 0.0~20221219.0, platform ptrace; kvm: probe timed out; systrap: not in this build)",
    );
    const checks = gvisorChecks(status, config, "v1");
    expect(checks.map((c) => [c.name, c.level])).toEqual([
      ["gvisor", "ok"],
      ["gvisor version", "warn"],
    ]);
    expect(gvisorChecks(status, config, "v2").at(-1)).toMatchObject({ name: "gvisor cgroups" });
  });

  it("is a warning when unavailable, a blocker only when the operator turned the tier on", async () => {
    const missing = await quickGvisorStatus({ ...config, runscPath: "/nonexistent/runsc" });
    expect(missing.available).toBe(false);
    expect(describeProbe(missing)).toMatch(
      /^unavailable: runsc: not found at \/nonexistent\/runsc/,
    );
    expect(gvisorChecks(missing, config, "v1")[0]!.level).toBe("warn");
    expect(gvisorChecks(missing, { ...config, enabled: "on" }, "v1")[0]!.level).toBe("fail");
    const off = await quickGvisorStatus({ ...config, enabled: "off" });
    expect(describeProbe(off)).toBe("unavailable: sandbox.gvisor.enabled is off");
  });
});
