/**
 * The internal channel's signature, unit by unit: each way of forging or
 * reusing a request is refused with UNAUTHORIZED, and a good one passes.
 */
import { describe, expect, it } from "vitest";
import {
  MAX_PRINCIPAL_CHARS,
  MAX_SKEW_MS,
  signRequest,
  verifyRequest,
  type Principal,
} from "../../src/cluster/internal-auth.js";
import { WardenError } from "../../src/errors.js";

const SECRET = "s".repeat(40);
const NOW = 1_800_000_000_000;
const alice: Principal = {
  userId: "alice",
  keyId: "key_a",
  scopes: ["sessions"],
  networkAllow: null,
  policy: null,
  ip: "10.0.0.1",
  requestId: "req_1",
};

function refused(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe("UNAUTHORIZED");
    return (error as Error).message;
  }
  throw new Error("accepted");
}

describe("internal channel signature", () => {
  const target = "/v1/sessions/sess_01ARZ3NDEKTSV4RRFFQ69G5FAV/files/a.txt";
  const headers = signRequest(SECRET, "GET", target, alice, NOW);

  it("accepts what an API node signed, and gives back the principal", () => {
    expect(verifyRequest(SECRET, headers, "GET", target, NOW + 1000)).toEqual(alice);
  });

  it("refuses a tampered principal (another user, more scopes)", () => {
    for (const change of [{ userId: "bob" }, { scopes: ["admin"] }]) {
      const forged = Buffer.from(JSON.stringify({ ...alice, ...change })).toString("base64url");
      const why = refused(() =>
        verifyRequest(SECRET, { ...headers, "x-warden-principal": forged }, "GET", target, NOW),
      );
      expect(why).toMatch(/does not match/);
    }
  });

  it("refuses the signature on another path or method", () => {
    refused(() => verifyRequest(SECRET, headers, "GET", `${target}x`, NOW));
    refused(() => verifyRequest(SECRET, headers, "GET", `${target}?dir=/`, NOW));
    refused(() => verifyRequest(SECRET, headers, "DELETE", target, NOW));
  });

  it("refuses a stale or future timestamp", () => {
    expect(
      refused(() => verifyRequest(SECRET, headers, "GET", target, NOW + MAX_SKEW_MS + 1)),
    ).toMatch(/timestamp/);
    refused(() => verifyRequest(SECRET, headers, "GET", target, NOW - MAX_SKEW_MS - 1));
  });

  it("refuses another secret", () => {
    refused(() => verifyRequest("t".repeat(40), headers, "GET", target, NOW));
  });

  it("refuses an oversized or malformed principal header before parsing it", () => {
    const big = "A".repeat(MAX_PRINCIPAL_CHARS + 1);
    expect(
      refused(() =>
        verifyRequest(SECRET, { ...headers, "x-warden-principal": big }, "GET", target, NOW),
      ),
    ).toMatch(/at most/);
    refused(() =>
      verifyRequest(SECRET, { ...headers, "x-warden-principal": "a.b" }, "GET", target, NOW),
    );
    refused(() =>
      verifyRequest(SECRET, { ...headers, "x-warden-internal": "v1 x y" }, "GET", target, NOW),
    );
  });

  it("refuses a user key, even next to a valid signature", () => {
    expect(
      refused(() =>
        verifyRequest(SECRET, { ...headers, authorization: "Bearer wdn_x" }, "GET", target, NOW),
      ),
    ).toMatch(/user keys/);
  });

  it("refuses unsigned requests and secrets too short to sign with", () => {
    refused(() => verifyRequest(SECRET, {}, "GET", target, NOW));
    expect(() => signRequest("short", "GET", target, alice)).toThrow(/at least 32/);
  });

  it("refuses a principal that does not fit its schema even when signed", () => {
    // A signer with the secret is trusted, but still cannot smuggle unknown fields.
    const odd = { ...alice, extra: 1 } as unknown as Principal;
    expect(() => signRequest(SECRET, "GET", target, odd)).toThrow();
  });
});
