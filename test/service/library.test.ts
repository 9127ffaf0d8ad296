/** The spec's library API, in process: the same scheduler the HTTP layer uses. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openWarden, type EmbeddedWarden } from "../../src/index.js";

let warden: EmbeddedWarden;

beforeAll(async () => {
  warden = await openWarden({
    env: { WARDEN_DATA_DIR: mkdtempSync(join(tmpdir(), "warden-lib-")) },
  });
});
afterAll(async () => {
  await warden?.shutdown(1000);
});

describe("library API", () => {
  it("execute({code, language, timeout, retryOnFailure}, userId)", async () => {
    const result = await warden.execute(
      { code: "print(sum(range(10)))", language: "python", timeout: 10, retryOnFailure: true },
      "lib-user",
    );
    expect(result).toMatchObject({ status: "completed", stdout: "45\n", metrics: { retries: 0 } });
    const logs = await warden.getLogs(result.id);
    expect(logs.map((l) => l.event)).toEqual(["queued", "started", "completed"]);
    expect(logs.every((l) => l.userId === "lib-user" && l.executionId === result.id)).toBe(true);
  });

  it("canStartExecution, getUserMetrics, getSystemMetrics and killExecution", async () => {
    expect(warden.canStartExecution("lib-user")).toEqual({ allowed: true, reason: null });
    const pending = warden.start(
      { code: "import time\ntime.sleep(60)", language: "python", timeout: 120 },
      "lib-user",
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(warden.getUserMetrics("lib-user")).toMatchObject({
      activeExecutions: 1,
      utilizationPercent: 20,
    });
    expect(warden.getSystemMetrics()).toMatchObject({
      activeExecutions: 1,
      totalUsers: 1,
      maxConcurrentSandboxes: 50,
    });
    expect(warden.killExecution(pending.id, "test")).toBe(true);
    expect((await pending.done).status).toBe("killed");
    expect((await warden.getLogs(pending.id)).at(-1)).toMatchObject({
      event: "killed",
      message: expect.stringContaining("test"),
    });
  });

  it("refuses what the HTTP layer refuses, with the same errors", async () => {
    await expect(warden.execute({ code: "x", language: "cobol" })).rejects.toMatchObject({
      code: "UNSUPPORTED_LANGUAGE",
    });
    await expect(
      warden.execute({ code: "x", language: "python", timeout: 5000 }),
    ).rejects.toMatchObject({ code: "INVALID_REQUEST" });
  });
});
