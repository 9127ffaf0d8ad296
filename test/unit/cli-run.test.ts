/** What `warden run` prints about egress, one line per event. */
import { describe, expect, it } from "vitest";
import { egressNotice } from "../../src/cli/run.js";
import type { EgressEvent } from "../../src/network/events.js";

const base: EgressEvent = {
  decision: "denied",
  host: "evil.example",
  port: 443,
  protocol: "connect",
  reason: "not on the allowlist",
  bytes: 0,
  address: null,
  count: 1,
};

describe("egressNotice", () => {
  it("names the host and port of a single refusal", () => {
    expect(egressNotice(base)).toBe(
      "warden: egress to evil.example:443 denied: not on the allowlist",
    );
  });

  it("prints nothing for an allowed connection", () => {
    expect(egressNotice({ ...base, decision: "allowed", reason: null })).toBeNull();
  });

  it("reads a throttled summary as a count and its busiest hosts, not as *:0", () => {
    const line = egressNotice({
      ...base,
      host: "*",
      port: 0,
      protocol: "summary",
      reason: "57 more refusals, counted by reason and host",
      count: 57,
      summary: [
        { host: "a.example", reason: "not on the allowlist", count: 40 },
        { host: "b.example", reason: "port not allowed", count: 10 },
        { host: "c.example", reason: "not on the allowlist", count: 4 },
        { host: "d.example", reason: "not on the allowlist", count: 2 },
        { host: "*", reason: "(other)", count: 1 },
      ],
    });
    expect(line).toBe(
      "warden: egress: 57 more attempts denied: a.example ×40 (not on the allowlist), " +
        "b.example ×10 (port not allowed), c.example ×4 (not on the allowlist), and 2 more",
    );
    expect(line).not.toContain("*:0");
  });
});
