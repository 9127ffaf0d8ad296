/** NotebookService's lifecycle: stored runs keep expiring while the service runs; close() stops it. */
import { mkdtempSync, rmSync, utimesSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { NotebookService } from "../../src/notebooks/service.js";
import type { Analyzer } from "../../src/policy/analyzer.js";
import type { SessionManager } from "../../src/sessions/manager.js";

const dir = mkdtempSync(join(tmpdir(), "warden-nb-expiry-"));
afterEach(() => {
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

describe("notebook run expiry", () => {
  it("removes runs past retentionDays every hour, not only at start, until closed", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const config = loadConfig({ env: {} });
    const service = new NotebookService(
      config,
      {} as SessionManager,
      {} as Analyzer,
      () => undefined,
      dir,
    );
    try {
      // A run written after start, already older than the retention period.
      const old = join(dir, "nb_old.json");
      writeFileSync(old, "{}");
      const past = (Date.now() - (config.retentionDays + 1) * 86_400_000) / 1000;
      utimesSync(old, past, past);
      await vi.advanceTimersByTimeAsync(3_600_000);
      await vi.waitFor(() => expect(existsSync(old)).toBe(false), { timeout: 2000 });
      expect(vi.getTimerCount()).toBe(1);
    } finally {
      service.close();
      service.close();
    }
    expect(vi.getTimerCount()).toBe(0);
  });
});
