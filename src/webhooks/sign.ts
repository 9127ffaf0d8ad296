/**
 * The delivery signature: HMAC-SHA256 with the key's webhook secret over
 * "<unix seconds>.<body>". The timestamp inside the signed text lets a
 * receiver refuse an old delivery replayed by someone who captured it; the
 * delivery id (same on every retry) lets it refuse one it already handled.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export function signatureHeader(secret: string, timestampS: number, body: string): string {
  const mac = createHmac("sha256", secret).update(`${timestampS}.${body}`).digest("hex");
  return `t=${timestampS},v1=${mac}`;
}

/** A receiver's check (docs/webhooks.md has the same in 10 lines); used by the tests. */
export function verifySignature(
  secret: string,
  header: string,
  body: string,
  nowS: number,
  toleranceS = 300,
): boolean {
  const parts = Object.fromEntries(
    header.split(",").map((p) => p.split("=", 2) as [string, string]),
  );
  const t = Number(parts["t"]);
  if (!Number.isInteger(t) || Math.abs(nowS - t) > toleranceS || !parts["v1"]) return false;
  const expected = Buffer.from(signatureHeader(secret, t, body).split("v1=")[1]!, "hex");
  const given = Buffer.from(parts["v1"], "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}
