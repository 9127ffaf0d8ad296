import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { resolveLimits } from "../../src/executions/limits.js";
import { WardenError } from "../../src/errors.js";

function configFile(content: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), "warden-config-")), "warden.json");
  writeFileSync(file, JSON.stringify(content));
  return file;
}

describe("config", () => {
  it("has the spec's defaults", () => {
    const c = loadConfig({ env: {} });
    expect(c).toMatchObject({
      defaultTimeout: 300,
      maxTimeout: 900,
      killGracePeriod: 10,
      maxCpuPercent: 80,
      maxMemoryMB: 2048,
      maxDiskMB: 5120,
      maxConcurrentSandboxes: 50,
      maxSandboxesPerUser: 5,
      maxArtifactSizeMB: 100,
      maxArtifactsPerExecution: 20,
      maxRetries: 3,
      retryBackoffMs: 1000,
    });
  });

  it("layers file < env < flags", () => {
    const file = configFile({ maxTimeout: 100, defaultTimeout: 10, sandbox: { uidBase: 900_000 } });
    const env = { WARDEN_MAX_TIMEOUT: "200", WARDEN_UID_COUNT: "50" };
    const c = loadConfig({ file, env, overrides: { maxTimeout: 300 } });
    expect(c.maxTimeout).toBe(300);
    expect(c.defaultTimeout).toBe(10);
    expect(c.sandbox).toMatchObject({ uidBase: 900_000, uidCount: 50 });
    expect(loadConfig({ file, env }).maxTimeout).toBe(200);
  });

  it("reads an all-digit cluster secret from the environment as text", () => {
    const secret = "1".repeat(40);
    const config = loadConfig({ env: { WARDEN_CLUSTER_SECRET: secret } });
    expect(config.cluster.secret).toBe(secret);
  });

  it("reports every problem as a `path: message` line", () => {
    const file = configFile({ maxTimeout: -1, sandbox: { uidBase: 5 }, bogus: true });
    try {
      loadConfig({ file, env: {} });
      expect.fail("should throw");
    } catch (error) {
      expect(error).toBeInstanceOf(WardenError);
      const message = (error as WardenError).message;
      expect(message).toMatch(/^maxTimeout: /m);
      expect(message).toMatch(/^sandbox\.uidBase: /m);
      expect(message).toMatch(/bogus/);
    }
  });

  it("refuses a default above its maximum", () => {
    expect(() => loadConfig({ env: {}, overrides: { defaultTimeout: 1000 } })).toThrow(
      /defaultTimeout/,
    );
  });

  it("names the file when it is not JSON", () => {
    const file = join(mkdtempSync(join(tmpdir(), "warden-config-")), "bad.json");
    writeFileSync(file, "{not json");
    expect(() => loadConfig({ file, env: {} })).toThrow(/bad\.json/);
  });
});

describe("request limits", () => {
  const config = loadConfig({ env: {} });

  it("fills defaults from config", () => {
    expect(resolveLimits(config, {})).toMatchObject({
      timeoutMs: 300_000,
      killGraceMs: 10_000,
      memoryMb: config.defaults.memoryMb,
      diskMb: config.defaults.diskMb,
    });
  });

  it("refuses values above a maximum, naming the field and the limit", () => {
    expect(() => resolveLimits(config, { timeout: 901 })).toThrow(
      "timeout: 901 exceeds the maximum 900 (maxTimeout)",
    );
    expect(() => resolveLimits(config, { limits: { memoryMb: 4096 } })).toThrow(
      "limits.memoryMb: 4096 exceeds the maximum 2048 (maxMemoryMB)",
    );
    expect(() => resolveLimits(config, { limits: { cpuPercent: 90 } })).toThrow(/maxCpuPercent/);
    expect(() => resolveLimits(config, { limits: { diskMb: 6000 } })).toThrow(/maxDiskMB/);
    expect(() => resolveLimits(config, { timeout: 0 })).toThrow(/positive/);
  });
});

describe("network entries are checked when the config loads", () => {
  const load = (network: unknown) => loadConfig({ env: {}, overrides: { network } });
  const message = (network: unknown): string => {
    try {
      load(network);
    } catch (error) {
      return (error as Error).message;
    }
    return "(loaded)";
  };

  it("accepts names, *.domain patterns and addresses the proxy would accept", () => {
    const config = load({
      allow: ["api.example.com", "*.example.org"],
      staticHosts: { "api.example.com": "127.0.0.1", "v6.example.com": "::1" },
    });
    expect(config.network.allow).toEqual(["api.example.com", "*.example.org"]);
  });

  it.each([
    [{ allow: ["exa mple.com"] }, /^network\.allow\.0: not a host name or \*\.domain pattern/m],
    [{ allow: ["*"] }, /^network\.allow\.0: /m],
    [{ allow: ["127.0.0.1"] }, /^network\.allow\.0: .*addresses are not allowed/m],
    [{ staticHosts: { "bad_name.com": "127.0.0.1" } }, /^network\.staticHosts.*bad_name\.com.*: /m],
    [
      { staticHosts: { "ok.example.com": "not-an-ip" } },
      /^network\.staticHosts\.ok\.example\.com: must be an IP address/m,
    ],
  ])("refuses %j with a path: message error", (network, expected) => {
    expect(message(network)).toMatch(expected);
  });
});
