import { describe, expect, it } from "vitest";
import { classify } from "../../src/sandbox/classify.js";

const base = {
  program: { exitCode: 0 } as { exitCode: number } | { signal: number } | null,
  bwrapStatus: 0,
  errors: [] as string[],
  timedOut: false,
  cpuExceeded: false,
  outputExceeded: false,
  killedByUser: false,
  forceKilled: false,
  disk: { usedBytes: 0, freeBytes: 1 << 20, freeInodes: 100 } as {
    usedBytes: number;
    freeBytes: number;
    freeInodes: number;
  } | null,
  oomKills: 0,
};

describe("classify", () => {
  it("exit 0 is completed, anything else failed", () => {
    expect(classify(base)).toEqual({ status: "completed", exitCode: 0, signal: null });
    expect(classify({ ...base, program: { exitCode: 3 } }).status).toBe("failed");
    expect(classify({ ...base, program: { signal: 11 } })).toEqual({
      status: "failed",
      exitCode: null,
      signal: "SIGSEGV",
    });
  });

  it("tells a signal death from a program exiting 137 on purpose", () => {
    expect(classify({ ...base, program: { exitCode: 137 } })).toMatchObject({
      exitCode: 137,
      signal: null,
    });
  });

  it("ranks what Warden did above what the program did", () => {
    const killed = { ...base, program: null, forceKilled: true };
    expect(classify({ ...killed, killedByUser: true, timedOut: true }).status).toBe("killed");
    expect(classify({ ...killed, timedOut: true, outputExceeded: true })).toMatchObject({
      status: "timeout",
      signal: "SIGKILL",
    });
    expect(classify({ ...base, cpuExceeded: true }).status).toBe("timeout");
    expect(classify({ ...base, program: { signal: 24 } }).status).toBe("timeout"); // SIGXCPU
    expect(classify({ ...killed, outputExceeded: true }).status).toBe("output_limit");
  });

  it("reports OOM kills and a full disk only when the program failed", () => {
    expect(classify({ ...base, program: { signal: 9 }, oomKills: 1 }).status).toBe("memory_limit");
    expect(classify({ ...base, oomKills: 1 }).status).toBe("completed");
    const full = { usedBytes: 10, freeBytes: 0, freeInodes: 5 };
    const noInodes = { usedBytes: 10, freeBytes: 1 << 20, freeInodes: 0 };
    expect(classify({ ...base, program: { exitCode: 1 }, disk: noInodes }).status).toBe(
      "disk_limit",
    );
    expect(classify({ ...base, program: { exitCode: 1 }, disk: full }).status).toBe("disk_limit");
    expect(classify({ ...base, disk: full }).status).toBe("completed");
    expect(classify({ ...base, program: { signal: 25 } }).status).toBe("disk_limit"); // SIGXFSZ
  });

  it("is an error when the program never reported, with the reason", () => {
    const r = classify({
      ...base,
      program: null,
      bwrapStatus: 256,
      errors: ["exec: mount workspace: EPERM"],
    });
    expect(r.status).toBe("error");
    expect(r.errorMessage).toContain("mount workspace");
    expect(classify({ ...base, program: null, bwrapStatus: 256 }).errorMessage).toContain(
      "status 256",
    );
  });
});
