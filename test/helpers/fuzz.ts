/**
 * The seeded PRNG every fuzz test draws from: the same seed gives the same
 * inputs, so a failure replays with `FUZZ_SEED=<n>`.
 */

/** mulberry32: small, fast, good enough to spread inputs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The run's seed: FUZZ_SEED when set, else the test's own default. */
export function fuzzSeed(fallback: number): number {
  return Number(process.env.FUZZ_SEED ?? fallback);
}
