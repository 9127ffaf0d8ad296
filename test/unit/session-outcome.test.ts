/** How a session call's end becomes a status, and the host's own count of its output. */
import { describe, expect, it } from "vitest";
import { callStatus, type CallFacts } from "../../src/sessions/outcome.js";
import { OutputTally } from "../../src/sessions/output-cap.js";
import { CommandStatusSchema } from "../../src/contract/session.js";

const base: CallFacts = {
  killed: false,
  timedOut: false,
  truncated: false,
  oomKilled: false,
  ok: true,
};

describe("callStatus", () => {
  it("uses the execution's words, Warden's actions before the kernel's before the program's", () => {
    expect(callStatus(base)).toBe("completed");
    expect(callStatus({ ...base, ok: false })).toBe("failed");
    expect(callStatus({ ...base, ok: false, oomKilled: true })).toBe("memory_limit");
    // An OOM kill elsewhere in the session does not spoil a call that ended well.
    expect(callStatus({ ...base, oomKilled: true })).toBe("completed");
    expect(callStatus({ ...base, ok: false, oomKilled: true, truncated: true })).toBe(
      "output_limit",
    );
    expect(callStatus({ ...base, ok: false, timedOut: true, truncated: true })).toBe("timeout");
    expect(callStatus({ ...base, ok: false, killed: true, timedOut: true })).toBe("killed");
    // Asked to stop, but it had already finished well.
    expect(callStatus({ ...base, killed: true })).toBe("completed");
    for (const facts of [base, { ...base, ok: false, killed: true }])
      expect(CommandStatusSchema.safeParse(callStatus(facts)).success).toBe(true);
  });
});

describe("OutputTally", () => {
  it("keeps each stream up to the limit, counted in bytes as they arrive", () => {
    const tally = new OutputTally(10);
    expect(tally.take("stdout", "12345")).toBe("12345");
    expect(tally.take("stdout", "6789abc")).toBe("6789a");
    expect(tally.take("stdout", "more")).toBe("");
    expect(tally.take("stderr", "ok")).toBe("ok");
    expect(tally.settle(false)).toEqual({ stdout: true, stderr: false });
  });

  it("cuts on a character boundary", () => {
    const tally = new OutputTally(4);
    expect(tally.take("stdout", "aé€")).toBe("aé"); // 1 + 2 bytes; € (3 bytes) does not fit
    expect(tally.bytes.stdout).toBe(3);
  });

  it("believes the agent's `truncated` only for a stream that did reach the limit", () => {
    const tally = new OutputTally(4);
    tally.take("stdout", "abcd");
    tally.take("stderr", "x");
    expect(tally.settle(true)).toEqual({ stdout: true, stderr: false });
    expect(new OutputTally(4).settle(true)).toEqual({ stdout: false, stderr: false });
  });
});
